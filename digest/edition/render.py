"""Rendering the digest: JSON (the public contract), plain text and HTML from templates.

The email is rendered once per date; personal links (unsubscribe, manage) are
placeholders substituted per subscriber, so 10,000 messages cost one render.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from datetime import date as Date
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.core.models import MANAGE, UNSUBSCRIBE, DigestItem, EmailContent
from digest.core.templating import templates_root, timestamp

HEADER = "We scan new podcasts and send you the top {n} insights {cadence}."
CADENCE = {False: "daily", True: "weekly"}
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def to_json(date: str, items: Sequence[DigestItem]) -> dict[str, Any]:
    """`digest preview --format json`: field names are a public contract."""
    return {
        "date": date,
        "insights": [
            {
                "text": i.insight.text,
                "quote": i.insight.quote,
                "start_seconds": i.insight.start_seconds,
                "episode_title": i.episode_title,
                "show_title": i.show_title,
                "episode_url": i.episode_url,
                "audio_url": i.audio_url,
                "prompt_version": i.insight.prompt_version,
            }
            for i in items
        ],
    }


# A sentence ends at . ! or ?, but not after a title or a common abbreviation ("Dr. Ada").
SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bvs\.)(?<!\bMrs\.)(?<=[.!?])\s"
)


def subject_for(date: str, items: Sequence[DigestItem], weekly: bool = False) -> str:
    """The date and the lead insight's topic: its first sentence, cut at a word."""
    day = ("week to " if weekly else "") + Date.fromisoformat(date).strftime("%a %d %b")
    if not items:
        return f"Podcast Digest, {day}"
    lead = items[0]
    text = lead.insight.text
    if lead.show_title and text.startswith(f"On {lead.show_title}"):
        text = text.split(": ", 1)[-1]  # "On <show>, host X argues: ..." names no topic
    first = SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".")
    topic = first if len(first) <= 70 else first[:70].rsplit(" ", 1)[0] + "…"
    return f"Podcast Digest, {day}: {topic}"


def wrap(text: str, width: int = 72, first: str = "", indent: str = "") -> str:
    """Plain-text paragraphs at 72 columns; long URLs stay whole so they still work."""
    return textwrap.fill(
        " ".join(text.split()),
        width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_root() / "email"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


def _context(
    date: str, items: Sequence[DigestItem], archive_url: str, feed_url: str, weekly: bool
) -> dict[str, Any]:
    return {
        "date": Date.fromisoformat(date).strftime("%A, %d %B %Y"),
        "header": HEADER.format(n=len(items) if items else 5, cadence=CADENCE[weekly]),
        "subject": subject_for(date, items, weekly),
        "unsubscribe_url": UNSUBSCRIBE,
        "manage_url": MANAGE,
        "archive_url": archive_url,
        "feed_url": feed_url,
        "items": [
            {
                "number": n,
                "text": i.insight.text,
                "show_title": i.show_title,
                "episode_title": i.episode_title,
                "moment_url": i.moment_url,
                "episode_url": i.episode_url,
                "timestamp": timestamp(i.insight.start_seconds)
                if i.insight.start_seconds is not None
                else "",
                "chapter": i.insight.chapter or "",
            }
            for n, i in enumerate(items, start=1)
        ],
    }


def render_for_readers(
    date: str,
    items: Sequence[DigestItem],
    base_url: str,
    *,
    weekly: bool = False,
    header: str = "",
) -> EmailContent:
    """The email as readers get it: archive and feed links at `digest web`'s public URL."""
    base = base_url.rstrip("/")
    return render_email(
        date,
        items,
        archive_url=f"{base}/archive/{date}",
        feed_url=f"{base}/archive/feed.xml",
        weekly=weekly,
        header=header,
    )


def render_email(
    date: str,
    items: Sequence[DigestItem],
    archive_url: str = "",
    feed_url: str = "",
    *,
    weekly: bool = False,
    header: str = "",
) -> EmailContent:
    """Subject, text and HTML (CSS inlined) for a date, with personal-link placeholders;
    `header` replaces the standard first line (the day's editor pass writes one)."""
    env = environment()
    context = _context(date, items, archive_url, feed_url, weekly)
    if header:
        context["header"] = header
    html = _INLINER.inline(env.get_template("digest.html.j2").render(**context))
    text = env.get_template("digest.txt.j2").render(**context)
    return EmailContent(date, context["subject"], text, html)
