"""Question-id stability: compare the last build's manifest with the bank as it is now.

The daily selection (kb.quiz) is a pure function of the question ids and their `added`
dates, so a question id that disappears (removed or renamed) reshuffles the daily schedule
from that question's first slot on, and a *new* question dated before today joins cycles
already under way and changes days already past. Neither is an error; both deserve a
warning at `kb check` time, while the author can still keep the old id or fix the date.

The previous ids come from `manifest.json` of the current build (`kb build` records each
entry's question ids there). With no build, or a build made before ids were recorded, there
is nothing to compare and no warning.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from kb.model import Corpus, Issue
from kb.quiz import EPOCH


def previous_question_ids(build_dir: Path) -> dict[str, list[str]] | None:
    """entry id -> question ids recorded by the build at `build_dir`, or None if unknown."""
    manifest = build_dir.resolve() / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return None
    out = {}
    for entry_id, meta in entries.items():
        ids = meta.get("questions") if isinstance(meta, dict) else None
        if not isinstance(ids, list):
            return None  # a manifest from before question ids were recorded
        out[entry_id] = [str(i) for i in ids]
    return out


def question_id_issues(corpus: Corpus, previous: dict[str, list[str]] | None, today: date | None = None) -> list[Issue]:
    """Warnings `question-id-removed` (an id of the previous build is gone) and
    `question-added-in-past` (a question new since then is dated before `today`)."""
    if previous is None:
        return []
    today = today or date.today()
    now = corpus.questions
    old_ids = {qid for ids in previous.values() for qid in ids}
    issues = []
    for entry_id, ids in sorted(previous.items()):
        gone = [qid for qid in ids if qid not in now]
        if not gone:
            continue
        entry = corpus.entries.get(entry_id)
        path = entry.path if entry else f"{entry_id}.md (removed)"
        new_here = [q.id for q in entry.questions if q.id not in old_ids] if entry else []
        for qid in gone:
            hint = (f"renamed to '{new_here[0]}'? " if len(new_here) == 1 and len(gone) == 1 else "") + (
                "keep question ids stable: a removed or renamed id shifts the daily question schedule "
                "from that question's slot on")
            issues.append(Issue(path, 1, "warning", "question-id-removed",
                                f"question id '{qid}' (entry '{entry_id}') is no longer in the bank", hint))
    for q in now.values():
        if q.id in old_ids or (q.added or EPOCH) >= today:
            continue
        entry = corpus.entries[q.entry_id]
        dated = f"added: {q.added}" if q.added else f"no added date (counts as {EPOCH})"
        issues.append(Issue(entry.path, q.line, "warning", "question-added-in-past",
                            f"new question '{q.id}' has {dated}, before today",
                            f"it may join daily cycles already under way and change days already past; "
                            f"set `added: {today.isoformat()}` (on the question or its entry)"))
    return issues
