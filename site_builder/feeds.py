"""sitemap.xml and the Atom feed: both need absolute URLs, so they exist only with --base-url.

Without a base URL the site stays fully relative (it works from file:// and any sub-path)
and these two files are simply not written: a sitemap or feed of relative URLs is invalid.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from urllib.parse import quote
from xml.sax.saxutils import escape

from kb.model import Corpus, Entry

FEED_ENTRIES = 50
QUOTE = {'"': "&quot;"}


def normalize_base_url(base_url: str) -> str:
    base = base_url.strip()
    return base if not base or base.endswith("/") else base + "/"


def _url(base: str, rel: str) -> str:
    return base + quote(rel, safe="/#:")


def sitemap_xml(base: str, pages: list[str], lastmod: dict[str, str]) -> str:
    """Every HTML page but 404; `lastmod`: page -> YYYY-MM-DD where known (entry `added`)."""
    rows = []
    for rel in pages:
        url = _url(base, "" if rel == "index.html" else rel)
        mod = f"<lastmod>{lastmod[rel]}</lastmod>" if rel in lastmod else ""
        rows.append(f"<url><loc>{escape(url)}</loc>{mod}</url>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + "\n".join(rows) + "\n</urlset>\n")


def _stamp(day: date | None, fallback: date) -> str:
    return datetime.combine(day or fallback, time(0), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_of(e: Entry) -> str:
    """What the feed says of an entry: its summary, or the start of its text."""
    return e.summary or e.body_text[:200]


def atom_xml(base: str, corpus: Corpus, categories: dict[str, str], fallback: date) -> str:
    """The newest entries (by `added`), newest first."""
    entries = sorted(corpus.entries.values(), key=lambda e: (e.added or date.min, e.id), reverse=True)[:FEED_ENTRIES]
    updated = _stamp(max((e.added for e in entries if e.added), default=None), fallback)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">',
        "<title>llm-kb 大模型面试题库：新条目</title>",
        f'<link rel="alternate" type="text/html" href="{escape(base)}"/>',
        f'<link rel="self" type="application/atom+xml" href="{escape(_url(base, "feed.xml"))}"/>',
        f"<id>{escape(_url(base, 'feed.xml'))}</id>", f"<updated>{updated}</updated>",
        "<author><name>llm-kb</name></author>",
    ]
    for e in entries:
        url = _url(base, f"{e.id}.html")
        cat = categories.get(e.category, e.category)
        summary = summary_of(e)
        parts.append(
            f"<entry><title>{escape(e.title)}</title><link rel=\"alternate\" type=\"text/html\" href=\"{escape(url)}\"/>"
            f"<id>{escape(url)}</id><updated>{_stamp(e.added, fallback)}</updated>"
            f"<category term=\"{escape(e.category, QUOTE)}\" label=\"{escape(cat, QUOTE)}\"/>"
            f"<summary>{escape(summary)}</summary></entry>"
        )
    parts.append("</feed>\n")
    return "\n".join(parts)
