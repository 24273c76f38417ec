"""Prefect flows: thin wiring of the `digest` stages (tasks call `digest.jobs` functions).

The flows themselves (poll-feeds, process-episode, daily-digest, digest-pipeline)
arrive with the orchestration issue; until then the CLI calls `digest.jobs` directly.
"""
