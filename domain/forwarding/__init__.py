"""Forwarding to the provincial platform: delivery of outbox rows, stage events, reconciliation."""
