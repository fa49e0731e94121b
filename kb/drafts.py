"""Entry files: finding them, reading them and validating their front-matter (no Markdown).

Kept apart from kb.loading because it needs only YAML and the front-matter models: the CLI
starts parsing the bank's files in a forked child (`prefetch`) before it imports what the rest
of a build needs (Markdown, the segmenter, Whoosh, Jinja2: most of a second), so one core
parses while the other imports.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kb.forking import Shared
from kb.frontmatter import Document, FrontMatterError
from kb.frontmatter import parse as parse_frontmatter
from kb.model import ID_RE, RESERVED_IDS, FrontMatter, Issue

MAX_BYTES = 1 << 20
SETTLED_NS = 2_000_000_000  # a file modified longer ago than this is trusted by its stat (kb.loading.LoadCache)
Stat = tuple[int, int, int]  # mtime in ns, size, inode


@dataclass
class Draft:
    """An entry file whose front-matter is valid, before its body is rendered."""

    id: str
    path: str
    fm: FrontMatter
    doc: Document
    text: str
    digest: str


def issue(path: str, line: int, code: str, message: str, hint: str = "", severity: str = "error") -> Issue:
    """An error (or warning) of the bank at `path:line`."""
    return Issue(path, line, severity, code, message, hint)  # type: ignore[arg-type]


def entry_files(entries_dir: Path) -> list[Path]:
    """Entry files of a bank: every `*.md`, except names starting with `_` or `.` (folders too),
    in path order (compared part by part, as sorted Paths are)."""
    found = []
    for root, dirs, files in os.walk(entries_dir):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found += [os.path.join(root, f) for f in files if f.endswith(".md") and not f.startswith(("_", "."))]
    return [Path(p) for p in sorted(found, key=lambda p: p.split(os.sep))]


def read_text(path: Path, shown: str, issues: list[Issue]) -> str | None:
    """A file's text (BOM dropped, CRLF as LF); None, with an issue, when it cannot be an entry."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            issues.append(issue(shown, 1, "too-large", f"file is {size:,} bytes, over the 1 MiB limit",
                                "split it into several entries"))
            return None
        raw = path.read_bytes()
    except OSError as exc:  # e.g. deleted or renamed while the bank was read (an editor saving)
        issues.append(issue(shown, 1, "unreadable", f"cannot read the file: {exc.strerror or exc}"))
        return None
    if not raw.strip():
        issues.append(issue(shown, 1, "empty-file", "file is empty", "run `kb new ID` for a valid skeleton"))
        return None
    if b"\x00" in raw:
        issues.append(issue(shown, 1, "binary-file", "file looks binary (it contains NUL bytes), not Markdown text"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        issues.append(issue(shown, line, "not-utf8", f"file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", "save it as UTF-8"))
        return None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _pydantic_issues(exc: ValidationError, doc: Document, shown: str) -> list[Issue]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(x) for x in loc)
        line = doc.line_of(loc)
        if err["type"] == "missing":
            out.append(issue(shown, line, "missing-key", f"missing required key '{where}'"))
        elif err["type"] == "extra_forbidden":
            allowed = FrontMatter.model_fields if len(loc) == 1 else ("id", "q", "a", "difficulty", "added")
            out.append(issue(shown, line, "unknown-key", f"unknown key '{where}'", "allowed keys: " + ", ".join(allowed)))
        else:
            got = err.get("input")
            out.append(issue(shown, line, "bad-value", f"'{where}': {err['msg']} (got {got!r})"))
    return out


def read_draft(path: Path, shown: str, issues: list[Issue]) -> Draft | None:
    """Read and validate one file's front-matter; problems go to `issues`."""
    text = read_text(path, shown, issues)
    if text is None:
        return None
    return parse_draft(path, shown, text, hashlib.sha256(text.encode()).hexdigest(), issues)


def parse_draft(path: Path, shown: str, text: str, digest: str, issues: list[Issue]) -> Draft | None:
    """Parse and validate the front-matter of one file's `text`; problems go to `issues`."""
    try:
        doc = parse_frontmatter(text)
    except FrontMatterError as exc:
        issues.append(issue(shown, exc.line, "front-matter", exc.message, exc.hint))
        return None
    try:
        fm = FrontMatter.model_validate(doc.data)
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, doc, shown))
        return None
    entry_id = fm.id if fm.id is not None else path.stem
    if not ID_RE.match(entry_id) or entry_id in RESERVED_IDS:
        why = "is reserved for a site page" if entry_id in RESERVED_IDS else "is not a valid id"
        line = doc.line_of(("id",)) if fm.id is not None else 1
        issues.append(
            issue(shown, line, "bad-id", f"entry id '{entry_id}' {why}",
                   "use lowercase letters a-z, digits and dashes, starting with a letter or digit, e.g. "
                   f"'{_slug(entry_id).replace('_', '-').strip('-') or 'my-entry'}'")
        )
        return None
    return Draft(entry_id, shown, fm, doc, text, digest)


def _slug(text: str) -> str:
    from kb.markdown import slugify  # only for a hint: kb.markdown is slow to import

    return slugify(text)


def stat_key(st: os.stat_result) -> Stat:
    """What a file's stat says of its content: it changed if any of these did."""
    return st.st_mtime_ns, st.st_size, st.st_ino


def stat_of(shown: str) -> Stat | None:
    """`stat_key` of the file at `shown`; None when it cannot be stat'ed."""
    try:
        return stat_key(os.stat(shown))
    except OSError:
        return None


def read_stamped(path: Path, shown: str, issues: list[Issue]) -> tuple[Stat | None, str, str, bool] | None:
    """(stat taken before reading, text, text hash, whether that stat can be trusted later) of
    an entry file; None, with an issue, when it cannot be read as one. Trusted: modified over
    SETTLED_NS before it was read (git's rule for "racy" files, see kb.loading.LoadCache)."""
    key = stat_of(shown)  # before reading: a change made after it shows in the next stat
    settled = key is not None and key[0] < time.time_ns() - SETTLED_NS
    text = read_text(path, shown, issues)
    if text is None:
        return None
    return key, text, hashlib.sha256(text.encode()).hexdigest(), settled


def read_file(path: Path) -> tuple[str, Stat | None, str, Draft, bool] | None:
    """(path as shown, stat before reading, text hash, draft, whether the stat can be trusted
    later) for an entry file that parses; None for one that does not (whoever needs its issues
    reads it again)."""
    shown = str(path)
    stamped = read_stamped(path, shown, [])
    if stamped is None:
        return None
    key, text, digest, settled = stamped
    draft = parse_draft(path, shown, text, digest, [])
    return (shown, key, digest, draft, settled) if draft is not None else None


def prefetch(entries_dir: Path) -> Shared:
    """Start parsing every entry file of `entries_dir` in a forked child; `.result()` (which
    parses what is left in this process) gives `read_file` of each. kb.loading.LoadCache.of
    turns that into a cache a load reuses: files that changed since are read again."""
    files = entry_files(entries_dir) if entries_dir.is_dir() else []
    return Shared("read", files, read_file)
