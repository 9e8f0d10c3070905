"""Operators of the admin API: accounts, roles, second factor, lockout, sessions."""
