"""Ingest: links move bytes, the pipeline decodes, stores and acks; devices and downlinks."""
