"""Real-name verification providers: one interface, a client and a simulator per provider."""
