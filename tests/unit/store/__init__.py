"""The store contract suite (a package, so its ``conftest`` is ``store.conftest``)."""
