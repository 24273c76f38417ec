"""Keys that stored data depends on, pinned to known values.

Each is written into the state database and read back by later runs: an episode's id,
a transcript's cache key and text hash, an extraction's prompt version, an insight's
id, an edition's selection. If the code that makes one changes, every stored row
keyed on it is orphaned (episodes seen as new, transcripts redone, LLM calls paid
again). So these are compared with values written down, never with what the same
code computes. A change here must be deliberate: a migration, or a bump that users
are told about (as `extractive-v4` was).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from digest.core.models import Segment, Transcript, selection_key
from digest.core.settings import TranscriptionSettings
from digest.feeds.parse import episode_id, episode_key
from digest.insights.backends.extractive import extractive_version
from digest.insights.context import EpisodeContext
from digest.insights.grounding import insight_id
from digest.insights.prompts import ANSWER_SCHEMA, Prompt, bounded_schema
from digest.store.transcript_repo import text_hash
from digest.transcripts.engines import cache_key
from digest.transcripts.engines.faster_whisper import FasterWhisperOptions


def test_episode_identity() -> None:
    assert episode_key("abc-123", "", "", None) == "guid:abc-123"
    assert episode_key("", "https://cdn.example/ep1.mp3", "", None) == (
        "url:https://cdn.example/ep1.mp3"
    )
    dated = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert episode_key("", "", "Episode 1", dated) == "hash:23f5db805d7c7087667df3e2df5c7681"
    assert episode_id("https://feeds.example/show.xml", "guid:abc-123") == "173c6a8d9bf7bbe7"


def test_transcript_cache_key_and_text_hash() -> None:
    options = FasterWhisperOptions(
        engine="faster-whisper",
        model="tiny.en",
        model_path="/anywhere",  # not part of the key: weights may move
        parallel_windows=2,
        language="en",
    )
    assert cache_key(options, TranscriptionSettings()) == "a98520d39155962c"
    transcript = Transcript(
        "en",
        (Segment(0, 5, "Hello there."), Segment(5, 9, " General Kenobi. ")),
        "whisper",
        "faster-whisper",
        "tiny.en",
    )
    assert text_hash(transcript) == (
        "7366da6d01ead241d513b352b26831a13236822364d1911e4b6143f7f5e82ebf"
    )


def test_prompt_versions_name_the_template_the_model_and_the_schema_sent() -> None:
    source = "Extract insights from {{ transcript }}."
    hosted = Prompt(
        "insights",
        Path("insights.j2"),
        source,
        answer_schema=bounded_schema(ANSWER_SCHEMA, 6, None),
    )
    assert hosted.version("gpt-4o-mini") == "f694c6e8f474"
    grammar = Prompt(
        "insights", Path("insights.j2"), source, answer_schema=bounded_schema(ANSWER_SCHEMA, 6, 800)
    )
    assert grammar.version("llama3.1:8b") == "e112bf7b5067"
    assert extractive_version() == "81194a983c8f"  # "extractive-v5"


def test_insight_ids_and_edition_selections() -> None:
    context = EpisodeContext("0123456789abcdef", "f" * 64, "Show", "Ep", "", None)
    quote = "Batteries earn most of their money in a few hours."
    assert insight_id(context, "abcdef012345", quote) == "183c5c81c8c0cc96"
    assert selection_key((3, 1, 2, 3)) == "1,2,3"
    assert selection_key(None) == selection_key(()) == "all"
