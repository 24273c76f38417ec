"""Rendering the digest: JSON (the public contract), plain text and HTML from templates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.models import DigestItem
from digest.prompts import templates_root, timestamp

HEADER = "We scan new podcasts and send you the top {n} insights daily."
FOOTER = "You get this because you subscribed to Podcast Digest."


def moment_url(item: DigestItem) -> str:
    """The audio at the quote: a media fragment (`#t=SECONDS`) that players honour."""
    if not item.audio_url:
        return ""
    start = item.insight.start_seconds
    return f"{item.audio_url}#t={int(start)}" if start is not None else item.audio_url


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


def _context(date: str, items: Sequence[DigestItem], footer: str) -> dict[str, Any]:
    return {
        "date": date,
        "header": HEADER.format(n=len(items) if items else 5),
        "subject": f"Podcast Digest {date}",
        "footer": footer,
        "items": [
            {
                "number": n,
                "text": i.insight.text,
                "show_title": i.show_title,
                "episode_title": i.episode_title,
                "moment_url": moment_url(i),
                "episode_url": i.episode_url,
                "timestamp": timestamp(i.insight.start_seconds)
                if i.insight.start_seconds is not None
                else "",
            }
            for n, i in enumerate(items, start=1)
        ],
    }


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(templates_root() / "email"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,
    )


def render_text(date: str, items: Sequence[DigestItem], footer: str = FOOTER) -> str:
    return environment().get_template("digest.txt.j2").render(**_context(date, items, footer))


def render_html(date: str, items: Sequence[DigestItem], footer: str = FOOTER) -> str:
    return environment().get_template("digest.html.j2").render(**_context(date, items, footer))
