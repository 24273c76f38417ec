"""Prefect orchestration against a real server (on PostgreSQL) started by the test session.

Logic is tested without Prefect elsewhere; these tests check the wiring: runs,
task runs and artifacts as an operator sees them, serving and scheduling, a
process worker on a work pool, alerts at a webhook, and the UI itself.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from digest.store import Store
from tests.support.browser import chromium
from tests.support.prefect_server import PrefectServer
from tests.support.requirements import need
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # a real Prefect server on PostgreSQL


def read_client(server: PrefectServer) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class Ctx:
        def __enter__(self) -> Any:
            self.settings = temporary_settings({PREFECT_API_URL: server.api})
            self.settings.__enter__()
            self.client = get_client(sync_client=True)
            return self.client.__enter__()

        def __exit__(self, *exc: Any) -> None:
            self.client.__exit__(*exc)
            self.settings.__exit__(*exc)

    return Ctx()


def digest_cli(
    server: PrefectServer, config: Path, *args: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=config.parent,
        **kw,
    )


def sample_config(tmp_path: Path, **extra: str) -> Path:
    config = tmp_path / "digest.toml"
    body = '[storage]\nstate_dir = "state"\n' + "".join(extra.values())
    config.write_text(body)
    return config


# ---------------------------------------------------------------- files


def test_deploy_files_describe_the_same_pipeline() -> None:
    import prefect

    from flows import pipeline
    from flows.deployments import NAMES

    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    assert spec["prefect-version"] == prefect.__version__
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == set(NAMES)
    for name, deployment in deployments.items():
        path, attribute = deployment["entrypoint"].split(":")
        assert path == "flows/pipeline.py"
        assert getattr(pipeline, attribute).name == name, "deployment names match flow names"
    assert deployments["process-episode"]["work_pool"]["name"] == "gpu"
    assert {deployments[n]["work_pool"]["name"] for n in NAMES if n != "process-episode"} == {"cpu"}
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "prefect-server", "bootstrap", "deploy", "worker-cpu", "worker-gpu"} <= set(
        services
    )
    assert (
        "prefect" in services["prefect-server"]["command"]
        and "start" in services["prefect-server"]["command"]
    )
    assert (
        "asyncpg://"
        in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    )
    assert services["worker-gpu"]["command"][-3:] == ["gpu", "--limit", "1"]
    assert services["deploy"]["command"][-1] == "deploy/prefect.yaml"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile, "the image runs the pinned server dependencies"


# ---------------------------------------------------------------- a run, as the operator sees it


def test_digest_run_against_a_server_shows_runs_tasks_and_artifacts(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    config = sample_config(tmp_path)
    assert digest_cli(prefect_server, config, "init", "--sample").returncode == 0
    started = datetime.now(UTC)  # the session's server also holds other tests' runs
    run = digest_cli(prefect_server, config, "run")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Processed 3 episode(s): 3 completed, 0 failed." in run.stdout
    assert "reader@example.com.eml" in run.stdout
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with read_client(prefect_server) as client:
        # This run's flow runs only: the session's server also holds other tests' runs.
        runs = [
            r
            for r in client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC)
            if r.start_time
            and r.start_time >= started
            and r.parameters.get("config_path") == str(config.resolve())
        ]
        ours = {r.id for r in runs}
        assert ours, "the run's flow runs are on the server"
        only_ours = FlowRunFilter(id=FlowRunFilterId(any_=list(ours)))
        flows = {f.id: f.name for f in client.read_flows()}
        by_flow: dict[str, list[Any]] = {}
        for r in runs:
            by_flow.setdefault(flows[r.flow_id], []).append(r)
        assert {n: len(rs) for n, rs in by_flow.items()}.items() >= {
            "digest-pipeline": 1,
            "poll-feeds": 1,
            "process-episode": 3,
            "daily-digest": 1,
        }.items()
        assert all(r.state.is_completed() for rs in by_flow.values() for r in rs)
        names = sorted(r.name for r in by_flow["process-episode"])
        assert names[0] == "process-episode: Model Minds (sample) – Three vectors of defensibility"
        tasks = client.read_task_runs(flow_run_filter=only_ours)
        assert {t.name.rsplit("-", 1)[0] for t in tasks} >= {
            "fetch_feed",
            "obtain",
            "transcribe",
            "extract",
            "send",
        }
        artifacts = [a for a in client.read_artifacts() if a.flow_run_id in ours]
        keys = {a.key for a in artifacts}
        assert {"new-episodes", "digest-preview", "send-results"} <= keys
        sent = next(a for a in artifacts if a.key == "send-results")
        assert "reader@example.com" in str(sent.data) and "shows" in str(sent.data), (
            "each delivery names the edition (the reader's shows) it came from"
        )
        assert sum(k.startswith("insights-") for k in keys if k) == 3
        insight = next(a for a in artifacts if a.key and a.key.startswith("insights-"))
        assert "> " in insight.data and "importance" in insight.data
        assert any(a.type == "progress" for a in artifacts), "transcription reported progress"
        with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
            [reader] = store.subscribers.list()
        assert not [a for a in artifacts if reader.unsubscribe_token in str(a.data)], (
            "no artifact carries a reader's token"
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(ours)))
        )
        assert any(log.name.startswith("digest") for log in logs), (
            "the library's own logs reach the UI, from this run"
        )


def test_the_prefect_ui_lists_the_flow_runs(prefect_server: PrefectServer, tmp_path: Path) -> None:
    need("chromium")
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    @flow(name="ui-probe")
    def ui_probe() -> int:
        return 1

    with temporary_settings({PREFECT_API_URL: prefect_server.api}):
        state = ui_probe(return_state=True)
    assert state.is_completed()
    dom = chromium(
        tmp_path / "profile",
        "--dump-dom",
        f"{prefect_server.url}/runs",
        width=1400,
        height=2000,
        wait_ms=20000,
    )
    assert "ui-probe" in dom, dom[-2000:]
    shot = tmp_path / "runs.png"
    chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"{prefect_server.url}/runs",
        width=1400,
        height=2000,
        wait_ms=20000,
    )
    assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------- serving, workers, alerts


def test_digest_serve_registers_schedules_and_runs_a_scheduled_run(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    config = sample_config(tmp_path)
    digest_cli(prefect_server, config, "init")
    serve = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(config), "serve"],
        env=prefect_server.env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    try:
        with read_client(prefect_server) as client:

            def deployments() -> dict[str, Any]:
                found = {d.name: d for d in client.read_deployments()}
                return (
                    found
                    if {"poll-feeds", "process-episode", "daily-digest", "digest-pipeline"}
                    <= set(found)
                    else {}
                )

            found = wait_for(deployments, 60, "digest serve to register its deployments")
            poll_schedule = found["poll-feeds"].schedules[0].schedule
            assert poll_schedule.interval.total_seconds() == 30 * 60
            assert found["daily-digest"].schedules[0].schedule.cron == "0 7 * * *"
            from prefect.states import Scheduled

            run = client.create_flow_run_from_deployment(
                found["daily-digest"].id, state=Scheduled()
            )
            final = wait_for(
                lambda: (r := client.read_flow_run(run.id)).state.is_final() and r,
                90,
                "the scheduled run",
            )
            assert final.state.is_completed(), final.state
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()


class Webhook:
    """A webhook receiver on loopback: the notification block posts alerts here."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_a_failing_feed_raises_one_alert_and_a_failed_run_another(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    hook = Webhook()
    config = sample_config(
        tmp_path, feeds="[feeds]\nalert_after_failures = 3\ntimeout_seconds = 2.0\n"
    )
    env = {**prefect_server.env, "DIGEST_ALERT_WEBHOOK_URL": hook.url}
    setup = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "bootstrap.py"), "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stderr
    assert "automation 'digest: a feed keeps failing'" in setup.stdout
    assert (
        digest_cli(prefect_server, config, "feeds", "add", "http://127.0.0.1:9/feed.xml").returncode
        == 0
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.pipeline import poll_feeds, process_episode

    with temporary_settings({PREFECT_API_URL: prefect_server.api}):
        for _ in range(5):  # failures 1..5: the alert fires once, at 3
            poll_feeds(str(config))
        feed_alerts = wait_for(
            lambda: [p for p in hook.posts if "polls in a row" in p.get("text", "")],
            60,
            "the feed alert",
        )
        assert "127.0.0.1:9/feed.xml failed 3 polls in a row" in feed_alerts[0]["text"]
        with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
            feed = store.feeds.list()[0]
            from digest.core.clock import utcnow
            from digest.feeds.parse import parse_feed

            items = parse_feed(
                b"<rss version='2.0'><channel><title>t</title><item><title>Broken</title><guid>b</guid>"
                b"<enclosure url='http://127.0.0.1:9/broken.mp3' type='audio/mpeg'/></item></channel></rss>",
                feed.url,
            ).episodes
            store.episodes.upsert(feed, ["broken-1"], items, utcnow(), lambda i: ("pending", None))
        state = process_episode("broken-1", str(config), return_state=True)
        assert state.is_failed()
    failed = wait_for(
        lambda: [p for p in hook.posts if "process-episode" in p.get("subject", "")],
        60,
        "the flow alert",
    )
    assert "Failed" in failed[0]["subject"]
    # The flow alert came from an event made after all five polls: by now a second feed
    # alert (polls 4 and 5) would have been delivered too. There is one.
    assert len([p for p in hook.posts if "polls in a row" in p.get("text", "")]) == 1


def test_a_run_that_ended_before_claiming_its_episode_does_not_hold_the_attempt(
    prefect_server: PrefectServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A run crashed by a server fault while a worker submitted it keeps its
    idempotency key; the next poll must still enqueue the attempt, exactly once."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelled, Crashed

    from flows.pipeline import PROCESS_DEPLOYMENT, RUNS_PER_ATTEMPT, enqueue_attempt

    key = "episode-parked-attempt-1"
    with (
        read_client(prefect_server) as client,
        temporary_settings({PREFECT_API_URL: prefect_server.api}),
    ):
        # A pool no worker serves: the runs stay queued until the test ends them.
        client.create_work_pool(WorkPoolCreate(name="parked", type="process"), overwrite=True)
        flow_id = client.create_flow_from_name(PROCESS_DEPLOYMENT.split("/")[0])
        deployment = client.create_deployment(
            flow_id, PROCESS_DEPLOYMENT.split("/")[1], work_pool_name="parked"
        )

        def runs() -> dict[str, Any]:
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment])
                )
            )
            return {r.name: r for r in found if r.parameters.get("episode_id") == "parked"}

        first = enqueue_attempt("parked", None, key)
        assert enqueue_attempt("parked", None, key) == first, "a queued attempt is enqueued once"
        assert len(runs()) == 1
        client.set_flow_run_state(runs()[first].id, Crashed(message="HTTP 500"), force=True)

        second = enqueue_attempt("parked", None, key)
        assert second not in (None, first)
        assert enqueue_attempt("parked", None, key) == second, "the next poll finds it queued"
        client.set_flow_run_state(runs()[second].id, Cancelled(), force=True)
        third = enqueue_attempt("parked", None, key)
        assert enqueue_attempt("parked", None, key) == third
        assert set(runs()) == {first, second, third}

        # A fault that ends every run: the poll stops after a few and names the episode.
        for _ in range(RUNS_PER_ATTEMPT):
            queued = [r for r in runs().values() if not r.state.is_final()]
            for run in queued:
                client.set_flow_run_state(run.id, Crashed(message="HTTP 500"), force=True)
            if not queued:
                break
            enqueue_attempt("parked", None, key)
        logger = logging.getLogger("digest")  # Prefect's logging stops its propagation
        logger.addHandler(caplog.handler)
        try:
            assert enqueue_attempt("parked", None, key) is None
        finally:
            logger.removeHandler(caplog.handler)
        assert len(runs()) == RUNS_PER_ATTEMPT
        assert "Episode parked" in caplog.text and "digest retry parked" in caplog.text
