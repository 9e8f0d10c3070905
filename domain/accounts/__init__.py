"""Accounts: one person, one account, with channel identities attached."""
