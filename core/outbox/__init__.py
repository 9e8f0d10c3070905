"""Durable outbox: jobs written in the business transaction, delivered by RQ workers."""
