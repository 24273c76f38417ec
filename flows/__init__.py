"""Prefect flows: thin wiring of the `digest` stages (tasks call `digest.jobs` functions).

`flows.pipeline` holds the four flows (poll-feeds, process-episode, daily-digest,
digest-pipeline); `flows.deployments` serves them with their schedules.
"""
