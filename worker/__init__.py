"""Background work: RQ jobs (worker.jobs) and the pure mining library (worker.mining)."""
