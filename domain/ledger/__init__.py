"""The citizen's data-use ledger: who used which of their data, when, and for what."""
