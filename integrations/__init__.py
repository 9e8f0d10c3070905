"""Clients of external systems, each with a local simulator speaking the same protocol."""
