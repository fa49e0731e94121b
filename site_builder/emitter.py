"""Placeholder site emitter: one page listing the entries (the full site replaces it)."""

from __future__ import annotations

import html
from pathlib import Path

from kb.build import write_file
from kb.model import Corpus


class SiteEmitter:
    name = "site"

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url

    def emit(self, corpus: Corpus, out: Path, progress=None) -> None:  # noqa: ANN001
        items = "".join(f"<li>{html.escape(e.title)}</li>" for e in corpus.entries.values())
        write_file(out / "site" / "index.html",
                   f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>llm-kb</title><ul>{items}</ul></html>')
