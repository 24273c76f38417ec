"""Seed a store with extracted insights from the corpus scripts (no audio, no LLM)."""

from __future__ import annotations

from pathlib import Path

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.models import DigestItem, Insight, Segment, Transcript
from digest.feeds.parse import parse_feed
from digest.jobs.extraction import Extractor
from digest.store import Store

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
SCRIPTS = ("kimi-k2", "mercury-2", "qwen3-coder-flash", "qwen3.5-122b-a10b")


def corpus_transcript(name: str, seconds_per_paragraph: float = 20.0) -> Transcript:
    paragraphs = [p.strip() for p in (CORPUS / f"{name}.txt").read_text().splitlines() if p.strip()]
    segments = tuple(
        Segment(i * seconds_per_paragraph, (i + 1) * seconds_per_paragraph, p)
        for i, p in enumerate(paragraphs)
    )
    return Transcript("en", segments, "publisher", "publisher:text", "text")


def seed_transcripts(
    store: Store, show: str = "Model Minds", scripts: tuple[str, ...] = SCRIPTS, **kwargs: float
) -> list[str]:
    """One feed, one transcribed episode per script (publisher-style timed text); their ids."""
    feed = store.feeds.add(f"https://{len(store.feeds.list())}.example/feed", utcnow(), title=show)
    items = "".join(
        f"<item><title>Episode {n}: {name}</title><guid>{name}</guid><link>https://show.example/{n}</link>"
        f"<enclosure url='https://cdn.example/{n}.mp3' type='audio/mpeg'/></item>"
        for n, name in enumerate(scripts, start=1)
    )
    parsed = parse_feed(
        f"<rss version='2.0'><channel><title>x</title>{items}</channel></rss>".encode(), feed.url
    )
    ids = [f"{feed.id}-{name}" for name in scripts]
    store.episodes.upsert(feed, ids, parsed.episodes, utcnow(), lambda i: ("transcribed", None))
    for episode_id, name in zip(ids, scripts, strict=True):
        store.transcripts.save(episode_id, corpus_transcript(name, **kwargs), utcnow())
    return ids


def seed_insights(
    store: Store, config: Config, show: str = "Model Minds", scripts: tuple[str, ...] = SCRIPTS
) -> None:
    """One feed, one episode per script, transcribed and extracted (extractive backend)."""
    seed_transcripts(store, show, scripts)
    extractor = Extractor(store, config)
    for episode in extractor.pending():
        extractor.extract(episode)


def item_with(
    text: str, episode_title: str = "Episode 1", chapter: str | None = None
) -> DigestItem:
    """One insight saying `text`, as an edition holds it (for ranking and matching)."""
    insight = Insight(
        id=f"i{abs(hash(text))}", episode_id="e1", text=text, quote=text, start_seconds=0.0,
        importance=5, prompt_version="v", model="m", chapter=chapter,
    )  # fmt: skip
    return DigestItem(insight, "Show", episode_title, "", "", utcnow())
