"""``sqltide demo``: the NYC taxi ELT pipeline (:mod:`.elt`, the default), a tour of the
statement API (:mod:`.statements`), each on an embedded sqltide, through the real HTTP API, and
seed 001's durable batch workflow with its worker killed mid-wait (:mod:`.durable`)."""
