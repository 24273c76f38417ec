"""The editors' workbench: front matter, try, eval and switching prompts safely."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.core.clock import utcnow
from digest.core.errors import ConfigError
from digest.core.templating import templates_root
from digest.feeds.parse import parse_feed
from digest.insights.backends.chat import GRAMMAR_MAX_CHARS
from digest.insights.prompts import bounded_schema, list_prompts, load_prompt
from digest.jobs.edition import edition_items
from digest.jobs.extraction import Extractor
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI, chat_handler, chat_reply, prompt_of
from tests.support.seed import corpus_transcript

DATABASES = ("sqlite",)  # prompts, not the database: one backend is enough

SHIPPED = (templates_root() / "prompts" / "insights.j2").read_text()
EVAL = templates_root() / "eval"


def write_prompt(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.j2"
    path.write_text(source)
    return path


def edited(name: str, extra: str = "") -> str:
    """The shipped prompt with a new name and one more instruction."""
    return SHIPPED.replace('name = "insights"', f'name = "{name}"').replace(
        "Skip ads, greetings", f"{extra}Skip ads, greetings"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% block system %}x{% endblock %}{% block user %}y{% endblock %}",
            r"bad\.j2:1: a prompt starts with front matter",
        ),
        (
            '{#---\nname = "bad"\ndescription = \n---#}\n',
            r"bad\.j2:3: front matter is not valid TOML",
        ),
        (
            '{#---\nname = "bad"\ndescription = "d"\nmodle = "x"\n---#}\n',
            r"bad\.j2:4: unknown front-matter key 'modle'",
        ),
        (
            '{#---\nname = "bad"\ndescription = "d"\ntemperature = "hot"\n---#}\n',
            r"bad\.j2:4: temperature must be a float",
        ),
        ('{#---\nname = "bad"\n---#}\n', r"bad\.j2:2: front matter needs a description"),
        (
            '{#---\nname = "bad"\ndescription = "d"\n---#}\n{% block system %}\n{% if %}\n{% endblock %}',
            r"bad\.j2:6: template syntax error",
        ),
        (
            '{#---\nname = "bad"\ndescription = "d"\n---#}\n{% block system %}x{% endblock %}',
            r"needs a \{% block user %\}",
        ),
    ],
    ids=[
        "no-front-matter",
        "bad-toml",
        "unknown-key",
        "wrong-type",
        "no-description",
        "jinja-syntax",
        "no-user-block",
    ],
)
def test_front_matter_and_template_errors_point_at_the_line(
    tmp_path: Path, source: str, message: str
) -> None:
    write_prompt(tmp_path, "bad", source)
    with pytest.raises(ConfigError, match=message):
        load_prompt("bad", str(tmp_path))
    [listed] = list_prompts(str(tmp_path))
    assert isinstance(listed, ConfigError), "`prompts list` shows the error instead of crashing"


def test_front_matter_overrides_the_config(
    store: Store, make_config: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts"
    write_prompt(
        folder,
        "terse",
        SHIPPED.replace('name = "insights"', 'name = "terse"\nmodel = "llama3.1:8b"')
        .replace("temperature = 0.2", "temperature = 0.7")
        .replace("max_insights = 6", "max_insights = 2"),
    )
    config = make_config(
        extraction={
            "backend": "openai",
            "base_url": fake_openai.base_url,
            "prompts_dir": str(folder),
            "prompt": "terse",
        }
    )
    extractor = Extractor(store, config)
    assert (extractor.model, extractor.backend.temperature, extractor.backend.max_insights) == (
        "llama3.1:8b",
        0.7,
        2,
    )  # type: ignore[union-attr]
    # The version names what is sent: the prompt, the model, and the answer schema as
    # bounded for this prompt (two insights; strings capped for a self-hosted server).
    terse = load_prompt("terse", str(folder))
    sent = bounded_schema(terse.answer_schema, 2, GRAMMAR_MAX_CHARS)
    assert extractor.version == replace(terse, answer_schema=sent).version("llama3.1:8b")
    assert extractor.version != terse.version("llama3.1:8b")


@pytest.fixture
def bench(tmp_path: Path, fake_openai: FakeOpenAI) -> Any:
    folder = tmp_path / "prompts"
    write_prompt(folder, "insights", SHIPPED)
    write_prompt(folder, "sharper", edited("sharper", "Prefer claims with numbers. "))
    write_prompt(folder, "liar", edited("liar", "INVENT quotes when the transcript is dull. "))
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "state"\n[extraction]\nbackend = "openai"\nbase_url = "{fake_openai.base_url}"\n'
        f'prompts_dir = "{folder}"\nmax_retries = 1\n'
    )

    def liar_or_honest(call: Any) -> Any:
        if "INVENT quotes" not in prompt_of(call):
            return chat_handler(call)
        fake = {
            "text": "The guest argues that GPUs will vanish. They say so twice.",
            "quote": "GPUs will vanish by the end of next year, every last one of them",
            "start": 1,
            "importance": 10,
        }
        return chat_reply(
            json.dumps({"insights": [fake, fake | {"quote": fake["quote"] + " indeed"}]}), 500
        )

    fake_openai.handlers["/v1/chat/completions"] = liar_or_honest

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    return run, tmp_path


def test_prompts_list_marks_the_active_one(bench: Any) -> None:
    run, _ = bench
    out = run("prompts", "list").output
    assert "Active: insights" in out
    assert "sharper" in out and "liar" in out and "extractive" in out


def test_try_runs_both_prompts_side_by_side_without_touching_the_digest(
    bench: Any, fake_openai: FakeOpenAI
) -> None:
    run, tmp_path = bench
    files = [str(EVAL / "corpus-kimi-k2.txt"), str(EVAL / "sample-episode-2.txt")]
    result = run("prompts", "try", "sharper", "--transcript", files[0], "--transcript", files[1])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count("sharper (gpt-4o-mini") == 2 and out.count("insights (gpt-4o-mini") == 2
    assert "corpus-kimi-k2.txt" in out and "[00:0" in out and "> " in out
    assert len(fake_openai.calls_to("/v1/chat/completions")) == 4
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        assert store.insights.usage_by_day(utcnow() - timedelta(days=1)) == [], (
            "try records nothing"
        )
    liar = run("prompts", "try", "liar", "--transcript", files[0]).output
    assert "dropped: quote not found in the transcript" in liar


def test_eval_scores_prompts_side_by_side_and_gates_on_grounding(bench: Any) -> None:
    run, _ = bench
    ok = run("prompts", "eval", "sharper", "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert (report["candidate"], report["against"], report["episodes"]) == (
        "sharper",
        "insights",
        7,
    )
    assert report["passed"] and report["worse_on"] == []
    m = report["measures"]
    assert m["grounding rate"]["candidate"] == 1.0 and m["tokens per episode"]["candidate"] > 100
    assert {
        "near-duplicate rate (lower is better)",
        "mid-sentence starts (lower is better)",
        "dangling openers (lower is better)",
        "low-confidence share (lower is better)",
        "spread across episodes (top N)",
        "attributed share",
        "cost per episode (USD)",
        "latency per episode (s)",
    } <= set(m)
    bad = run("prompts", "eval", "liar")
    assert bad.exit_code == 1
    assert "liar is worse than insights on: grounding rate" in " ".join(bad.output.split())
    table = run("prompts", "eval", "extractive", "--against", "insights")
    assert "grounding rate" in table.output and "extractive" in table.output, (
        "the offline backend is a prompt too"
    )


def test_switching_prompts_re_extracts_only_inside_the_window_and_ships_the_new_version(
    store: Store, make_config: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts"
    write_prompt(folder, "insights", SHIPPED)
    write_prompt(folder, "sharper", edited("sharper", "Prefer claims with numbers. "))
    settings = {"backend": "openai", "base_url": fake_openai.base_url, "prompts_dir": str(folder)}
    feed = store.feeds.add("https://show.example/feed", utcnow(), title="Model Minds")
    items = parse_feed(
        b"<rss version='2.0'><channel><title>t</title><item><title>Old</title><guid>old</guid>"
        b"<enclosure url='https://x/o.mp3'/></item><item><title>New</title><guid>new</guid>"
        b"<enclosure url='https://x/n.mp3'/></item></channel></rss>",
        feed.url,
    ).episodes
    store.episodes.upsert(
        feed, ["old"], items[:1], utcnow() - timedelta(days=10), lambda i: ("transcribed", None)
    )
    store.episodes.upsert(feed, ["old", "new"], items, utcnow(), lambda i: ("transcribed", None))
    store.transcripts.save("old", corpus_transcript("kimi-k2"), utcnow())
    store.transcripts.save("new", corpus_transcript("qwen3.5-122b-a10b"), utcnow())
    first = Extractor(store, make_config(extraction=settings))
    for episode in first.pending():
        first.extract(episode)
    switched = Extractor(store, make_config(extraction={**settings, "prompt": "sharper"}))
    assert [e.id for e in switched.pending()] == ["new"], (
        "the archive outside the window is left alone"
    )
    for episode in switched.pending():
        switched.extract(episode)
    assert {i.prompt_version for i in store.insights.for_episode("new")} == {switched.version}
    assert {i.prompt_version for i in store.insights.for_episode("old")} == {first.version}
    preview = edition_items(
        store,
        make_config(extraction={**settings, "prompt": "sharper"}),
        utcnow().date().isoformat(),
    )
    assert switched.version in {i.insight.prompt_version for i in preview}


@pytest.mark.slow  # starts a Prefect server
def test_the_prefect_variable_selects_the_active_prompt(prefect_server: Any) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.variables import Variable

    from flows.context import ACTIVE_PROMPT_VARIABLE, prompt_override

    with temporary_settings({PREFECT_API_URL: prefect_server.api}):
        assert prompt_override() is None
        Variable.set(ACTIVE_PROMPT_VARIABLE, "sharper", overwrite=True)
        try:
            assert prompt_override() == "sharper"
        finally:
            Variable.unset(ACTIVE_PROMPT_VARIABLE)
