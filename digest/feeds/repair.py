"""Repairs of the mistakes podcast feeds really make, before they are parsed.

Podcast apps and feedparser's loose parser read feeds that a strict XML parser
refuses; a subscriber of such a show expects us to read them too. Each repair here
is one that cannot change what a correct document means, and each is reported, so
`digest feeds list` can show the publisher's mistakes as warnings:

- a byte-order mark or whitespace before the XML declaration;
- a missing or wrong encoding declaration (bytes that are not what it says);
- a namespace prefix used without a declaration (`itunes:`, `podcast:`, ...);
- HTML named entities (`&nbsp;`, `&eacute;`), which XML does not define;
- a bare `&` in text or URLs.

What is dangerous stays refused elsewhere (entity declarations, oversize
documents); this module never expands anything.
"""

from __future__ import annotations

import codecs
import re
from html.entities import name2codepoint

# The namespaces podcast feeds use, for prefixes a publisher forgot to declare.
KNOWN_NAMESPACES = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "atom": "http://www.w3.org/2005/Atom",
    "media": "http://search.yahoo.com/mrss/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "googleplay": "http://www.google.com/schemas/play-podcasts/1.0",
    "psc": "http://podlove.org/simple-chapters",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "spotify": "http://www.spotify.com/ns/rss",
}
XML_ENTITIES = {"lt", "gt", "amp", "quot", "apos"}
DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
ROOT_TAG = re.compile(r"<(?!\?|!)([A-Za-z_][\w.-]*(?::[\w.-]+)?)([^>]*)>")
PREFIX_USE = re.compile(
    r"</?([A-Za-z_][\w.-]*):[A-Za-z_]|\s([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*\s*="
)
PREFIX_DECL = re.compile(r"xmlns:([A-Za-z_][\w.-]*)\s*=")
CDATA = re.compile(r"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)", re.S)
AMPERSAND = re.compile(r"&(?!#\d+;|#x[0-9A-Fa-f]+;)([A-Za-z][A-Za-z0-9]*;)?")


def repair(content: bytes) -> tuple[bytes, list[str]]:
    """The document as UTF-8 a strict parser can read, and what was wrong with it."""
    warnings: list[str] = []
    text = _decode(_strip_prologue(content, warnings), warnings)
    text = _declare_prefixes(text, warnings)
    text = _fix_references(text, warnings)
    return text.encode("utf-8"), warnings


def _strip_prologue(content: bytes, warnings: list[str]) -> bytes:
    """Whitespace before `<?xml` (after a byte-order mark, if any) makes strict parsers
    refuse the whole document."""
    bom = codecs.BOM_UTF8 if content.startswith(codecs.BOM_UTF8) else b""
    body = content[len(bom) :]
    stripped = body.lstrip(b" \t\r\n")
    if len(stripped) < len(body) and stripped.startswith(b"<?xml"):
        warnings.append("whitespace before the XML declaration (removed)")
        return bom + stripped
    return content


def _decode(content: bytes, warnings: list[str]) -> str:
    """Text from the declared encoding if it fits the bytes, else UTF-8, else Windows-1252;
    the declaration is rewritten to say UTF-8, which the repaired bytes are."""
    declared_match = (
        DECLARED_ENCODING.search(content[:200]) if content.startswith(b"<?xml") else None
    )
    declared = declared_match.group(1).decode("ascii").lower() if declared_match else ""
    if content.startswith(codecs.BOM_UTF8):
        content, declared = content[len(codecs.BOM_UTF8) :], declared or "utf-8"
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = "utf-16"
    candidates = [c for c in (declared, "utf-8", "windows-1252") if c]
    for encoding in candidates:
        try:
            text = content.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if declared and encoding != declared:
            warnings.append(
                f"declared encoding {declared!r} does not match the bytes; read as {encoding}"
            )
        elif not declared and encoding != "utf-8":
            warnings.append(f"no encoding declared and not UTF-8; read as {encoding}")
        text = text.lstrip("\ufeff")
        return DECLARATION_TEXT.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1)
    return content.decode("utf-8", errors="replace")  # windows-1252 decodes almost anything


DECLARATION_TEXT = re.compile(r"^<\?xml[^>]*\?>")


def _declare_prefixes(text: str, warnings: list[str]) -> str:
    used = {a or b for a, b in PREFIX_USE.findall(_outside_cdata(text))} - {"xml", "xmlns"}
    missing = sorted(used - set(PREFIX_DECL.findall(text)))
    if not missing:
        return text
    root = ROOT_TAG.search(text)
    if root is None:
        return text
    declarations = "".join(
        f' xmlns:{p}="{KNOWN_NAMESPACES.get(p, f"urn:undeclared-prefix:{p}")}"' for p in missing
    )
    warnings.append(
        "namespace prefix(es) used without a declaration: " + ", ".join(f"{p}:" for p in missing)
    )
    at = root.end(1)
    return text[:at] + declarations + text[at:]


def _fix_references(text: str, warnings: list[str]) -> str:
    """HTML named entities to numeric references; bare ampersands escaped; CDATA and
    comments untouched."""
    found: dict[str, set[str]] = {"entity": set(), "ampersand": set()}

    def fix(match: re.Match[str]) -> str:
        name = (match.group(1) or "")[:-1]
        if name in XML_ENTITIES:
            return match.group(0)
        if name in name2codepoint:
            found["entity"].add(f"&{name};")
            return f"&#{name2codepoint[name]};"
        found["ampersand"].add("&")
        return "&amp;" + (match.group(1) or "")

    parts = CDATA.split(text)
    fixed = "".join(p if i % 2 else AMPERSAND.sub(fix, p) for i, p in enumerate(parts))
    if found["entity"]:
        warnings.append("HTML entities XML does not define: " + ", ".join(sorted(found["entity"])))
    if found["ampersand"]:
        warnings.append("unescaped & in text or URLs")
    return fixed


def _outside_cdata(text: str) -> str:
    return "".join(p for i, p in enumerate(CDATA.split(text)) if not i % 2)
