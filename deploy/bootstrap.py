"""Create what the deployments rely on, idempotently: run it as often as you like.

- work pools `cpu` and `gpu` (process workers; see deploy/README.md for Kubernetes)
- global concurrency limits `whisper` (strict: transcriptions at once) and `llm`
  (a rate limit on chat completions)
- the notification block `digest-alerts` (a webhook: $DIGEST_ALERT_WEBHOOK_URL)
- two automations that use it: a pipeline flow failed or crashed, and a feed that
  has failed `[feeds] alert_after_failures` polls in a row (one alert per outage)
- one automation without it: a flow run whose heartbeats stopped (its worker was
  killed, its machine lost) is marked Crashed after 90 s. Workers must send
  heartbeats: PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 (deploy/README.md)

Usage: PREFECT_API_URL=http://server:4200/api python deploy/bootstrap.py [--config digest.toml]
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectAlreadyExists

from digest.core.config import load_config

BLOCK = "digest-alerts"
ALERTED_FLOWS = ["poll-feeds", "process-episode", "daily-digest", "digest-pipeline"]


def automations(block_id: Any) -> list[AutomationCore]:
    flow_failed = AutomationCore(
        name="digest: a pipeline flow failed",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": ALERTED_FLOWS},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="podcast-digest: {{ flow.name }} {{ flow_run.state.name }}",
                body="Flow run {{ flow_run.name }} of {{ flow.name }} ended "
                "{{ flow_run.state.name }}: {{ flow_run.state.message }}",
            )
        ],
    )
    feed_unhealthy = AutomationCore(
        name="digest: a feed keeps failing",
        trigger=EventTrigger(
            expect={"digest.feed.unhealthy"},
            match={"prefect.resource.id": "digest.feed.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="podcast-digest: feed failing",
                body="{{ event.resource['prefect.resource.name'] }} failed "
                "{{ event.payload.consecutive_failures }} polls in a row: "
                "{{ event.payload.error }}",
            )
        ],
    )
    return [flow_failed, feed_unhealthy]


ZOMBIE_SECONDS = 90  # three missed heartbeats at PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30


def crash_unresponsive_runs() -> AutomationCore:
    """Prefect's own recipe for "zombie" runs (docs: detect-zombie-flows): a run that
    stops sending heartbeats without reaching a final state is marked Crashed, which
    the failure alert then reports. The episode it held is taken over by another
    worker once the claim's lease runs out (`[orchestration] lease_seconds`)."""
    return AutomationCore(
        name="digest: crash unresponsive flow runs",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=ZOMBIE_SECONDS),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {ZOMBIE_SECONDS} s: the worker or its machine died",
            )
        ],
    )


def _replace(client: Any, automation: AutomationCore) -> None:
    for old in client.read_automations_by_name(automation.name):
        client.delete_automation(old.id)
    client.create_automation(automation)


def bootstrap(config_path: str | None, webhook_url: str | None) -> list[str]:
    config = load_config(config_path)
    done = []
    with get_client(sync_client=True) as client:
        for pool in (config.orchestration.cpu_pool, config.orchestration.gpu_pool):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
                done.append(f"created work pool {pool}")
            except ObjectAlreadyExists:
                done.append(f"work pool {pool} exists")
        client.upsert_global_concurrency_limit_by_name(
            "whisper", config.orchestration.whisper_slots
        )
        rpm = config.orchestration.llm_requests_per_minute
        client.upsert_global_concurrency_limit_by_name("llm", rpm, slot_decay_per_second=rpm / 60)
        done.append("concurrency limits whisper and llm")
        _replace(client, crash_unresponsive_runs())
        done.append("automation 'digest: crash unresponsive flow runs'")
        if not webhook_url:
            done.append("no $DIGEST_ALERT_WEBHOOK_URL: alerts not set up")
            return done
        block = CustomWebhookNotificationBlock(
            name="podcast-digest",
            url=webhook_url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
            allow_private_urls=True,  # the operator chose this URL, often an internal host
        )
        block_id = block.save(BLOCK, overwrite=True)
        for automation in automations(block_id):
            _replace(client, automation)
            done.append(f"automation {automation.name!r}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="digest.toml (default: $DIGEST_CONFIG or ./digest.toml)")
    args = parser.parse_args()
    for line in bootstrap(args.config, os.environ.get("DIGEST_ALERT_WEBHOOK_URL")):
        print(line)


if __name__ == "__main__":
    main()
