"""HTTP layer: flask-smorest API, error format, authentication, request plumbing."""
