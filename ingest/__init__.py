"""Ingestion and storage: files to chunks with provenance (pipeline.py plans, write.py writes,
reader.py reads in a child process with loaders/), embedded (embedding.py) and stored behind one
interface (library.py: local_library.py or server_library.py, with manifest/ or catalog.py), kept in sync (watch.py).
docs/design.md draws how a file goes through them."""
