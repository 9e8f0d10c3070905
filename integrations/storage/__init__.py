"""Blob storage for uploaded materials: one interface, a local-disk and an S3-compatible backend."""
