"""Shared government data fetched for an application, with the citizen's consent (issue: shared data)."""
