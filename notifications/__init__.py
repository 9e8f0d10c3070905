"""Who is told what, on which channel, with delivery state (built by the notifications issue)."""
