"""Ingestion: files to chunks with provenance, embedded and stored in Chroma, kept in sync."""
