"""Job handlers, one module per area."""
