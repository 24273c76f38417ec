"""Prefect flows: thin wiring of the `digest` stages (tasks call `digest.jobs` functions).

`flows.pipeline` holds the four flows (poll-feeds, process-episode, daily-digest,
digest-pipeline); `flows.deployments` serves them with their schedules; `flows.local`
is what a `digest run` in a terminal needs around them.

Importing this package sets Prefect's defaults for this project, before anything
imports Prefect itself (Prefect reads its settings once, at import). A value already
in the environment always wins.
"""

import os

DEFAULTS = {
    # Ship these loggers' records to the UI, beside Prefect's own.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "digest,openai,httpx",
    # Library code also logs outside flow runs (CLI commands, a serve process).
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # Ephemeral mode starts a local server; it must not phone home (nor log errors offline).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Prefect waits 20 s for its temporary server; a cold start on a busy 2-core machine
    # (its database migrations included) was measured at 36 s and more. `digest init`
    # migrates that database beforehand; this limit covers a slow machine on top.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
}
for _name, _value in DEFAULTS.items():
    os.environ.setdefault(_name, _value)
