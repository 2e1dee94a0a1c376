"""The worker's side of a job's life: claim it, run its pipeline, record how it ended."""
