"""``sqltide demo``: the NYC taxi ELT pipeline (:mod:`.elt`, the default) and a tour of the
statement API (:mod:`.statements`), each on an embedded sqltide, through the real HTTP API."""
