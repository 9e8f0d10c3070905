"""投诉 / 咨询 (12345-style): tracked requests with a timeline, operator replies and the citizen's rating."""
