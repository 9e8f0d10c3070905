"""Background entry points: the RQ worker, the sweeper, and the job handlers they call."""
