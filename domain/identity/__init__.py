"""Real-name verification: assurance levels, verifications with providers, protected identity data."""
