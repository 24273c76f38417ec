"""Pure feed parsing: no server, no database."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from digest.core.errors import FeedParseError
from digest.feeds.parse import episode_id, initial_status, parse_duration, parse_feed
from tests.conftest import fixture_bytes

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE = "https://gridtalk.example/feed.xml"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3723", 3723.0),
        ("3723.5", 3723.5),
        ("62:03", 3723.0),
        ("1:02:03", 3723.0),
        ("01:02:03.5", 3723.5),
        ("2h 5m", 7500.0),
        ("1 hour 2 minutes 3 seconds", 3723.0),
        ("45 min", 2700.0),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_duration_accepts_the_formats_feeds_use(
    text: str | None, seconds: float | None
) -> None:
    assert parse_duration(text) == seconds


def test_rss_with_itunes_and_podcasting20_tags() -> None:
    feed = parse_feed(fixture_bytes("feeds/rss_itunes.xml"), BASE)
    assert feed.title == "Grid Talk"
    assert [e.title for e in feed.episodes] == [
        "How batteries balance the grid",
        "Heat pumps, honestly",
        "Season 3 trailer",
        "The first episode",
    ]
    first = feed.episodes[0]
    assert first.key == "guid:gridtalk-042"
    assert first.published_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert first.duration_seconds == 3723.0
    assert first.enclosure_url == "https://cdn.example/gridtalk/42.mp3"
    assert first.enclosure_length == 31415926
    assert first.link == "https://gridtalk.example/42"
    # feedparser alone keeps only the last of several transcript tags; all three are
    # kept here, timed formats first.
    assert [t.type for t in first.transcripts] == ["application/json", "text/vtt", "text/html"]
    assert first.transcripts[0].language == "en"
    assert feed.episodes[2].episode_type == "trailer"
    assert feed.episodes[3].duration_seconds == 7500.0


def test_missing_guid_falls_back_to_enclosure_url() -> None:
    feed = parse_feed(fixture_bytes("feeds/rss_itunes.xml"), BASE)
    assert feed.episodes[1].key == "url:https://cdn.example/gridtalk/41.mp3"
    assert feed.episodes[1].guid == ""


def test_atom_enclosures_resolve_against_the_feed_url() -> None:
    feed = parse_feed(fixture_bytes("feeds/atom.xml"), "https://atomic.example/atom")
    assert feed.title == "Atomic Audio"
    first, notes = feed.episodes
    assert first.enclosure_url == "https://atomic.example/media/7.m4a"
    assert first.enclosure_type == "audio/mp4"
    assert first.key == "guid:urn:uuid:atomic-7"
    assert notes.enclosure_url == ""


def test_reused_guid_with_different_audio_keeps_both_and_drops_exact_duplicates() -> None:
    feed = parse_feed(fixture_bytes("feeds/identity.xml"), "https://m.example/feed")
    keys = [e.key for e in feed.episodes]
    assert keys[:2] == ["guid:same", "url:https://m.example/2.mp3"]
    assert len(keys) == 3, "the exact duplicate item is collapsed"
    assert len(set(keys)) == len(keys)
    assert any("duplicate" in w for w in feed.warnings)


def test_item_without_guid_or_enclosure_gets_a_stable_hash_identity() -> None:
    content = fixture_bytes("feeds/identity.xml")
    a = parse_feed(content, "https://m.example/feed").episodes[-1]
    b = parse_feed(content, "https://m.example/feed").episodes[-1]
    assert a.key.startswith("hash:") and a.key == b.key
    assert a.transcripts[0].url == "https://m.example/t.srt"


def test_episode_id_is_stable_and_distinct_per_feed() -> None:
    assert episode_id("https://a/feed", "guid:1") == episode_id("https://a/feed", "guid:1")
    assert episode_id("https://a/feed", "guid:1") != episode_id("https://b/feed", "guid:1")
    assert len(episode_id("https://a/feed", "guid:1")) == 16


def test_changed_title_keeps_the_identity() -> None:
    content = fixture_bytes("feeds/rss_itunes.xml")
    renamed = content.replace(
        b"How batteries balance the grid", b"How batteries balance the grid (re-edit)"
    )
    assert parse_feed(content, BASE).episodes[0].key == parse_feed(renamed, BASE).episodes[0].key


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("feeds/not_a_feed.html", "HTML page"),
        ("feeds/entity_bomb.xml", "declares XML entities"),
        ("feeds/external_entity.xml", "declares XML entities"),
    ],
)
def test_unusable_documents_raise_a_message_naming_the_url(fixture: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(FeedParseError) as info:
        parse_feed(fixture_bytes(fixture), "https://bad.example/feed")
    assert message in str(info.value)
    assert "https://bad.example/feed" in str(info.value)
    assert time.monotonic() - started < 5, "an entity bomb must be refused, not expanded"


def test_xml_still_broken_after_repair_is_read_leniently_with_a_warning() -> None:
    feed = parse_feed(fixture_bytes("feeds/unclosed_channel.xml"), "https://bad.example/feed")
    assert feed.title == "Sloppy" and [e.title for e in feed.episodes] == ["First", "Second"]
    assert any("malformed XML at line 5" in w and "read leniently" in w for w in feed.warnings)


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Half a feed',
        b"<rss><channel><title>half a feed",
        b'<rss version="2.0"><channel><title>T</title><item><title>Unclosed',
        b'<rss version="2.0"><channel><title>T</title><item><title>A</title><guid>a</gu',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom cut</title><entry><title>x',
    ],
)
def test_a_document_cut_off_before_any_whole_item_is_a_failed_parse(document: bytes) -> None:
    with pytest.raises(FeedParseError) as caught:
        parse_feed(document, "https://cut.example/feed")
    message = str(caught.value)
    assert message.startswith("https://cut.example/feed: malformed XML at line")
    assert "no complete item could be read" in message


def test_a_document_cut_after_its_first_item_keeps_that_item_and_says_so() -> None:
    feed = parse_feed(fixture_bytes("feeds/cut_after_first_item.xml"), "https://cut.example/f")
    assert feed.title == "Cut Short"
    [episode] = feed.episodes
    assert (episode.title, episode.guid) == ("Whole episode", "whole-1")
    assert episode.enclosure_url == "https://cdn.example/whole-1.mp3"
    assert any("cut off mid-way" in w and "Half an episode" in w for w in feed.warnings)


def test_a_whole_empty_feed_is_a_show_with_no_episodes_yet() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>New</title></channel></rss>', BASE)
    assert (feed.title, feed.episodes, feed.warnings) == ("New", (), ())


def test_a_feed_without_a_title_says_so_and_leaves_naming_to_the_caller() -> None:
    feed = parse_feed(
        b'<rss version="2.0"><channel><item><guid>1</guid></item></channel></rss>', BASE
    )
    assert feed.title == ""


def test_titles_lose_control_characters_that_could_inject_headers() -> None:
    xml = (
        b'<rss version="2.0"><channel><title>Evil\r\nBcc: x@y</title><item><guid>1</guid>'
        b"<title>A&#13;&#10;B</title></item></channel></rss>"
    )
    feed = parse_feed(xml, "https://e.example/")
    assert "\n" not in feed.title and "\r" not in feed.title
    assert feed.episodes[0].title == "A B"


class TestInitialStatus:
    feed = parse_feed(fixture_bytes("feeds/rss_itunes.xml"), BASE)

    def status(self, index: int, first_poll: bool) -> tuple[str, str | None]:
        return initial_status(
            self.feed.episodes[index], first_poll=first_poll, now=NOW, lookback_hours=48
        )

    def test_recent_episodes_are_pending(self) -> None:
        assert self.status(0, first_poll=True) == ("pending", None)
        assert self.status(1, first_poll=True) == ("pending", None)

    def test_trailers_are_skipped(self) -> None:
        assert self.status(2, first_poll=False) == ("skipped", "trailer")

    def test_back_catalogue_is_skipped_on_first_poll_only(self) -> None:
        status, reason = self.status(3, first_poll=True)
        assert status == "skipped" and reason is not None and "back catalogue" in reason
        assert self.status(3, first_poll=False) == ("pending", None)

    def test_lookback_window_is_configurable(self) -> None:
        item = self.feed.episodes[1]  # published 17.5 h before NOW
        assert initial_status(item, first_poll=True, now=NOW, lookback_hours=12)[0] == "skipped"
        assert initial_status(item, first_poll=True, now=NOW, lookback_hours=24)[0] == "pending"

    def test_items_without_audio_or_transcript_are_skipped(self) -> None:
        notes = parse_feed(fixture_bytes("feeds/atom.xml"), "https://atomic.example/atom").episodes[
            1
        ]
        assert initial_status(notes, first_poll=False, now=NOW, lookback_hours=48)[0] == "skipped"


ITEM = b"<item><title>Caf&eacute;&nbsp;talk</title><guid>g1</guid><enclosure url='https://cdn.example/a.mp3?x=1&y=2' type='audio/mpeg'/></item>"


@pytest.mark.parametrize(
    ("document", "warning"),
    [
        (b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>" + ITEM + b"</channel></rss>",
         "HTML entities XML does not define: &eacute;, &nbsp;"),
        (b"  \n<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>T</title>"
         + ITEM + b"</channel></rss>", "whitespace before the XML declaration"),
        (b"\xef\xbb\xbf\n<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>"
         + ITEM + b"</channel></rss>", "whitespace before the XML declaration"),
        ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Café</title>"
         .encode("cp1252") + ITEM + b"</channel></rss>", "declared encoding 'utf-8' does not match"),
        ("<rss version='2.0'><channel><title>Café</title>".encode("cp1252") + ITEM
         + b"</channel></rss>", "no encoding declared and not UTF-8"),
        (b"<rss version='2.0'><channel><title>T</title>" + ITEM + b"</channel></rss>",
         "unescaped & in text or URLs"),
    ],
)  # fmt: skip
def test_safe_mistakes_are_repaired_and_reported(document: bytes, warning: str) -> None:
    feed = parse_feed(document, "https://pub.example/feed.xml")
    [episode] = feed.episodes
    assert episode.title == "Café talk"
    assert episode.enclosure_url == "https://cdn.example/a.mp3?x=1&y=2", "the & survives as it was"
    assert any(warning in w for w in feed.warnings), feed.warnings


@pytest.mark.parametrize(
    "document",
    [
        b"<rss version='0.91'><channel><title>T</title><item><title>E</title><link>https://e.example/1</link>"
        b"<enclosure url='https://cdn.example/1.mp3' type='audio/mpeg' length='1'/></item></channel></rss>",
        b"<rss version='0.92'><channel><title>T</title><item><title>E</title>"
        b"<enclosure url='https://cdn.example/1.mp3' type='audio/mpeg' length='1'/></item></channel></rss>",
        b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' xmlns='http://purl.org/rss/1.0/'"
        b" xmlns:enc='http://purl.oclc.org/net/rss_2.0/enc#'><channel rdf:about='x'><title>T</title></channel>"
        b"<item rdf:about='https://e.example/1'><title>E</title><link>https://e.example/1</link>"
        b"<enc:enclosure rdf:resource='https://cdn.example/1.mp3' enc:type='audio/mpeg'/></item></rdf:RDF>",
        b"<feed version='0.3' xmlns='http://purl.org/atom/ns#'><title>T</title><entry><title>E</title>"
        b"<id>e1</id><link rel='enclosure' type='audio/mpeg' href='https://cdn.example/1.mp3'/></entry></feed>",
        b"<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><entry><title>E</title><id>e1</id>"
        b"<link rel='enclosure' type='audio/mpeg' href='https://cdn.example/1.mp3'/></entry></feed>",
    ],
    ids=["rss091", "rss092", "rss10", "atom03", "atom10"],
)
def test_every_rss_and_atom_version_is_read(document: bytes) -> None:
    feed = parse_feed(document, "https://pub.example/feed.xml")
    assert feed.title == "T"
    assert [(e.title, e.enclosure_url) for e in feed.episodes] == [
        ("E", "https://cdn.example/1.mp3")
    ]
