"""Answering: retrieval over the ingested library (and, later, grounded answers from a local model)."""
