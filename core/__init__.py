"""Infrastructure shared by every layer: db, redis, crypto, tokens, outbox, errors, logging."""
