-- The ELT process on PostgreSQL: the seed's `call run_elt_process();`, with the file to load.
CALL run_elt_process(:source);
