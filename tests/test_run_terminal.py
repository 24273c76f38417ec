"""What `digest run` prints: a line per stage and the summary, not Prefect's line per
task run; those go to the Prefect UI and, with `-v`, to the terminal too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.captions import VTT
from tests.support.feeds import item
from tests.support.httpserver import LoopbackServer, Route
from tests.support.processes import digest, digest_env

DATABASES = ("sqlite",)  # what the terminal shows, not the database
PREFECT_TASK_LINE = "Finished in state Completed()"


def feed(server: LoopbackServer, episodes: int) -> str:
    items = "".join(
        item(n, transcript=(server.url(f"/{n}.vtt"), "text/vtt")) for n in range(1, episodes + 1)
    )
    for n in range(1, episodes + 1):
        server.routes[f"/{n}.vtt"] = Route(VTT, content_type="text/vtt")
    server.routes["/feed.xml"] = Route(
        (
            "<rss version='2.0' xmlns:podcast='https://podcastindex.org/namespace/1.0'>"
            f"<channel><title>Grid Talk</title>{items}</channel></rss>"
        ).encode()
    )
    return server.url("/feed.xml")


@pytest.mark.slow  # two runs, each starting Prefect
def test_a_run_shows_its_stages_and_leaves_prefects_task_lines_to_verbose(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[feeds]\nallow_private_addresses = true\n'
        '[digest]\nsend_time = "00:00"\n'
    )
    env, _ = digest_env(tmp_path / "home")
    url = feed(http_server, episodes=2)
    for args in (("init",), ("feeds", "add", url), ("subscribers", "add", "r@example.org")):
        assert digest(config, env, *args).returncode == 0

    quiet = digest(config, env, "run")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    shown = quiet.stdout + quiet.stderr
    assert PREFECT_TASK_LINE not in shown, "Prefect's per-task lines stay out of the terminal"
    assert "INFO" not in shown, "nor Prefect's other lines, to the very end"
    lines = {line.split()[0]: line for line in quiet.stdout.splitlines() if line.strip()}
    assert "1/1" in lines["Feeds"], quiet.stdout
    assert "2/2" in lines["Episodes"], quiet.stdout
    assert "Insights" in lines and "/" not in lines["Insights"], "a count: no total is known"
    assert "1/1" in lines["Messages"], quiet.stdout
    assert "Processed 2 episode(s): 2 completed, 0 failed." in quiet.stdout

    verbose = digest(config, env, "-v", "run")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert PREFECT_TASK_LINE in verbose.stdout + verbose.stderr, "-v shows them"
