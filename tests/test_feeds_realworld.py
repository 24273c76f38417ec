"""Feeds as other podcast software meets them: real-world fixtures from gPodder's
podcast parser, feedparser and the Podcasting 2.0 namespace (tests/fixtures/realworld,
with sources and licences). The measure: every episode with an enclosure that the
reference parser finds, we record too."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest

from digest.core.errors import FeedParseError
from digest.core.models import ParsedFeed, Person
from digest.feeds.parse import parse_feed

REALWORLD = Path(__file__).parent / "fixtures" / "realworld"
BASE = "http://example.com/feed.xml"
FEEDS = sorted(p for p in REALWORLD.glob("*/*") if p.suffix in (".rss", ".xml"))


def reference_count(path: Path) -> int:
    """Episodes with an enclosure as the reference parser sees them: podcastparser's own
    expected output for its fixtures, else feedparser's (distinct enclosure URLs)."""
    expected = path.with_suffix(".json")
    if path.parent.name == "podcastparser" and expected.exists():
        return sum(1 for e in json.loads(expected.read_text())["episodes"] if e["enclosures"])
    urls = set()
    for entry in feedparser.parse(path.read_bytes()).entries:
        hrefs = [
            link.get("href") for link in entry.get("links", []) if link.get("rel") == "enclosure"
        ]
        urls.update(h for h in hrefs[:1] if h)
    return len(urls)


def ours(path: Path) -> ParsedFeed:
    return parse_feed(path.read_bytes(), BASE)


def test_every_episode_the_reference_parsers_find_is_recorded() -> None:
    found = reference = 0
    missed = []
    for path in FEEDS:
        want = reference_count(path)
        try:
            got = sum(1 for e in ours(path).episodes if e.enclosure_url)
        except FeedParseError:  # an empty or truncated document: fine if nothing was there
            got = 0
        reference += want
        found += min(got, want)
        if got < want:
            missed.append(f"{path.parent.name}/{path.name}: {got} of {want}")
    assert reference >= 50, "the fixtures must keep exercising real feeds"
    assert found == reference, f"recorded {found} of {reference}: {missed}"


@pytest.mark.parametrize("name", ["no_title.rss", "no_title_multi_enclosure.rss", "simple.rss"])
def test_titles_are_the_ones_a_podcast_client_shows(name: str) -> None:
    path = REALWORLD / "podcastparser" / name
    expected = json.loads(path.with_suffix(".json").read_text())["episodes"]
    by_url = {e.enclosure_url: e.title for e in ours(path).episodes}
    for episode in expected:
        for enclosure in episode["enclosures"][:1]:
            assert by_url[enclosure["url"]] == " ".join(episode["title"].split())


def test_an_untitled_item_takes_its_decoded_file_name() -> None:
    xml = (
        b"<rss version='2.0'><channel><item><guid>1</guid><enclosure "
        b"url='https://cdn.example.net/shows/Ep%2012%3A%20Grids.mp3?x=1' type='audio/mpeg'/>"
        b"</item></channel></rss>"
    )
    feed = parse_feed(xml, "https://feeds.example.net/pod.xml")
    assert feed.title == "", "the poll names an untitled show (tests/test_poll.py)"
    assert feed.episodes[0].title == "Ep 12: Grids"


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("podcastparser/itunes_no_xmlns.rss", "itunes:"),
        ("podcastparser/episode_podcast_person.rss", "podcast:"),
        ("feedparser/illformed__undeclared_namespace.xml", "without a declaration"),
        ("feedparser/illformed__rss_item_link_corrupted_ampersands.xml", "read leniently"),
    ],
)
def test_recovered_feeds_say_what_was_wrong(name: str, warning: str) -> None:
    feed = ours(REALWORLD / name)  # recovered: parsed, not refused
    assert any(warning in w for w in feed.warnings), feed.warnings


def test_people_and_chapters_are_read_at_item_and_channel_level() -> None:
    item_level = ours(REALWORLD / "podcastparser" / "episode_podcast_person.rss").episodes[0]
    assert item_level.people == (
        Person("John Doe", "host", "http://www.example.com"),
        Person("Stephanie Smith", "guest", "http://amazingsite.com"),
    )
    chapters = ours(REALWORLD / "podcastparser" / "episode_podcast_chapters.rss").episodes[0]
    assert chapters.chapters_url.startswith("http") and chapters.chapters_url.endswith(".json")
    example = ours(REALWORLD / "podcast-namespace" / "example.xml")
    assert all(e.people for e in example.episodes), "the channel's people stand in"
    assert {p.name for e in example.episodes for p in e.people} >= {"Adam Curry"}
