"""Citizen API, version 1."""
