"""Logins and sessions: mini-program, SMS, refresh rotation, revocation."""
