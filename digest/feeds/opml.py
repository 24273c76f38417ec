"""OPML import and export: how podcast apps hand subscription lists to each other."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as SafeET

from digest.core.errors import InvalidInput
from digest.core.models import Feed


def parse_opml(content: bytes, source: str = "OPML file") -> list[tuple[str, str]]:
    """Every `<outline xmlUrl=...>` at any depth, as (url, title), first occurrence kept."""
    try:
        root = SafeET.fromstring(content)
    except Exception as exc:  # ParseError, or defusedxml refusing entities
        raise InvalidInput(f"{source} is not valid OPML: {exc}") from exc
    if root.tag.lower() != "opml":
        raise InvalidInput(f"{source} is not OPML: its root element is <{root.tag}>")
    found: dict[str, str] = {}
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in found:
            found[url] = (outline.get("title") or outline.get("text") or "").strip()
    return list(found.items())


def render_opml(feeds: list[Feed], title: str = "podcast-digest subscriptions") -> str:
    """OPML 2.0 that Apple Podcasts, Overcast, Pocket Casts and AntennaPod import."""
    opml = Element("opml", version="2.0")
    head = SubElement(opml, "head")
    SubElement(head, "title").text = title
    body = SubElement(opml, "body")
    for feed in feeds:
        SubElement(
            body,
            "outline",
            type="rss",
            text=feed.title or feed.url,
            title=feed.title,
            xmlUrl=feed.url,
        )
    xml: str = tostring(opml, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n"
