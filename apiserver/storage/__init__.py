"""ARC's storage layer: a bytes-level key-value store with etcd's revision model (see ``interface.py``)."""
