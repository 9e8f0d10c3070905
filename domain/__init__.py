"""Business rules per area: services, models, errors. No Flask request in here."""
