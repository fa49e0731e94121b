"""Load the bank: read every file, validate, resolve links, render once -> Corpus + issues.

Never raises on bad content: every problem of the whole bank becomes an `Issue` with a line,
so authors see them all in one run. Two passes, as Quartz does: every name is collected first,
then each body is parsed and its links are resolved against the complete name index.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb import __version__, markdown
from kb.codehash import code_hash
from kb.drafts import Draft, Stat, entry_files, issue, parse_draft, read_stamped, stat_of
from kb.forking import Shared
from kb.links import NameIndex, NameOwner, backlinks, dedupe, prerequisite_cycles
from kb.markdown import slugify
from kb.model import ID_RE, Corpus, Entry, Issue, Link, Question

PARALLEL_MIN = 200  # files to parse before a second process pays for its fork and pickling
CATEGORIES_FILE = "_categories.yml"
Progress = Callable[[str, int, int], None]


@dataclass
class LoadCache:
    """What a load parsed, by content, for the next load to reuse: drafts by (path, text hash),
    and rendered entries (with their issues) by (path, text hash, categories), each with the
    name lookups its rendering made. A rendering is reused only when every one of those lookups
    still gives the same answer, so renaming an entry re-renders just the entries that link to
    it. Whole-bank checks always run anew. Kept in the build folder, tagged with a code hash.

    `stats` keeps each file's (mtime, size, inode) with its text hash, as git's index does: a
    file whose stat is unchanged is not read again. Only files whose mtime was over SETTLED_NS
    old when they were read are kept (git's "racy" files: a file can change again within its
    file system's timestamp granularity, leaving the stat as it was)."""

    drafts: dict[tuple[str, str], Draft] = field(default_factory=dict)
    stats: dict[str, tuple[int, int, int, str]] = field(default_factory=dict)  # path -> (mtime_ns, size, ino, hash)
    rendered: dict[tuple[str, str, tuple], tuple[Entry, list[Issue], list[tuple]]] = field(default_factory=dict)
    names: tuple[object, NameIndex, list[Issue]] | None = None  # (inputs, names, their issues)
    version: str = field(default_factory=code_hash)

    @classmethod
    def read(cls, path: Path) -> LoadCache | None:
        """The cache saved at `path`; None when it is missing, unreadable or from other code."""
        try:
            cache = pickle.loads(path.read_bytes())  # our own file in the build folder
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None
        return cache if isinstance(cache, cls) and cache.version == code_hash() else None

    @classmethod
    def of(cls, files: list[tuple[str, Stat | None, str, Draft, bool] | None]) -> LoadCache:
        """A cache of files read just now (`kb.drafts.prefetch`): their drafts, and the stats
        of those settled enough to be trusted."""
        cache = cls()
        for shown, st, digest, draft, settled in filter(None, files):
            cache.drafts[(shown, digest)] = draft
            if settled:
                cache.stats[shown] = (*st, digest)
        return cache

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)


class RecordedNames:
    """The name index as one entry's rendering sees it: every lookup and its answer is kept
    (see LoadCache), so a cached rendering can be checked against a changed bank cheaply."""

    def __init__(self, names: NameIndex) -> None:
        self._names = names
        self.lookups: list[tuple[str, str, str | None]] = []

    def resolve(self, name: str) -> str | None:
        return self._log("resolve", name, self._names.resolve(name))

    def suggest(self, name: str) -> str | None:
        return self._log("suggest", name, self._names.suggest(name))

    def title(self, entry_id: str) -> str | None:
        return self._log("title", entry_id, self._names.title(entry_id))

    def _log(self, op: str, arg: str, answer: str | None) -> str | None:
        self.lookups.append((op, arg, answer))
        return answer


def same_answers(names: NameIndex, lookups: list[tuple[str, str, str | None]]) -> bool:
    """Whether `names` answers every recorded lookup as it was answered then."""
    return all(getattr(names, op)(arg) == answer for op, arg, answer in lookups)


def load_categories(entries_dir: Path, issues: list[Issue]) -> dict[str, str]:
    """`_categories.yml`: category key -> display name."""
    path = entries_dir / CATEGORIES_FILE
    shown = str(path)
    if not path.is_file():
        issues.append(issue(shown, 1, "no-categories", f"{CATEGORIES_FILE} is missing", "list each category as `key: 中文名`"))
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.append(issue(shown, mark.line + 1 if mark else 1, "bad-categories", f"cannot read categories: {exc}"))
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        issues.append(issue(shown, 1, "bad-categories", "categories must be a mapping of `key: name` strings"))
        return {}
    for key in data:
        if not ID_RE.match(key):
            issues.append(issue(shown, 1, "bad-categories", f"category key '{key}' must be lowercase letters, digits and dashes"))
    return dict(data)


def _unique(drafts: list[Draft], issues: list[Issue]) -> list[Draft]:
    by_id: dict[str, list[Draft]] = {}
    for d in drafts:
        by_id.setdefault(d.id, []).append(d)
    for entry_id, group in by_id.items():
        if len(group) > 1:
            for d in group:
                others = ", ".join(o.path for o in group if o is not d)
                line = d.doc.line_of(("id",)) if d.fm.id is not None else 1
                issues.append(issue(d.path, line, "duplicate-id", f"duplicate entry id '{entry_id}': also in {others}"))
    return [g[0] for g in by_id.values() if len(g) == 1]


def _names_inputs(drafts: list[Draft]) -> tuple:
    """Everything `_names` reads: when it is the same, so are the names (an edit of a body or
    of questions keeps them; ~10x cheaper to compare than to rebuild the index)."""
    return tuple((d.id, d.path, d.fm.title, tuple(d.fm.aliases), d.doc.line_of(("id",)), d.doc.line_of(("title",)),
                  tuple(d.doc.line_of(("aliases", i)) for i in range(len(d.fm.aliases)))) for d in drafts)


def _names(drafts: list[Draft], issues: list[Issue]) -> NameIndex:
    names = NameIndex()
    for d in drafts:  # ids first: an alias may never shadow an id
        names.add(d.id, NameOwner(d.id, "id", d.path, d.doc.line_of(("id",))), issues)
    for d in drafts:
        names.titles[d.id] = d.fm.title.strip()
        names.add(d.fm.title, NameOwner(d.id, "title", d.path, d.doc.line_of(("title",))), issues)
        for i, alias in enumerate(d.fm.aliases):
            names.add(alias, NameOwner(d.id, "alias", d.path, d.doc.line_of(("aliases", i))), issues)
    for d in drafts:  # the file's stem (os.path: a Path per file costs 5 us)
        names.add(os.path.splitext(os.path.basename(d.path))[0], NameOwner(d.id, "file", d.path, 1), issues)
    return names


def _resolve(parsed: markdown.Parsed, source: str, base_line: int, names: NameIndex | RecordedNames, shown: str,
             issues: list[Issue]) -> list[Link]:
    """Resolve the links of one parsed text in place (sets hrefs) and return its edges."""
    edges = []
    for raw in parsed.links:
        line = base_line + raw.line - 1
        written = f"[[{raw.token.content[2:-2]}]]" if raw.kind == "wikilink" else f"({raw.target}.md)"
        target = names.resolve(raw.target) if raw.target else source
        if target is None:
            hint = f"did you mean '{s}'?" if (s := names.suggest(raw.target)) else "no entry has that id, title or alias"
            issues.append(issue(shown, line, "unresolved-link", f"link {written}: no such entry", hint))
            continue
        anchor = slugify(raw.anchor) if raw.anchor else None
        href = f"{target}.html" + (f"#{anchor}" if anchor else "")
        if target == source and anchor:
            href = f"#{anchor}"
        raw.token.attrSet("href", href)
        if raw.kind == "wikilink":  # [[hnsw]] reads as its title; [[Faiss]] as written
            written_as_id = raw.target.strip().lower() == target
            raw.token.meta["display"] = raw.label or (names.title(target) if written_as_id else raw.target)
        edges.append(Link(source, target, "link", line, anchor))
    for line, err in parsed.math_errors:
        issues.append(issue(shown, base_line + line - 1, "bad-math", f"math cannot be rendered: {err}"))
    return edges


def render_entry(d: Draft, names: NameIndex | RecordedNames, categories: dict[str, str], issues: list[Issue]) -> Entry:
    """Render body and answers once, resolve every link and list edge."""
    fm, doc, shown = d.fm, d.doc, d.path
    if categories and fm.category not in categories:
        hint = "known categories: " + ", ".join(categories)
        if m := difflib.get_close_matches(fm.category, list(categories), n=1):
            hint = f"did you mean '{m[0]}'? " + hint
        issues.append(issue(shown, doc.line_of(("category",)), "unknown-category", f"unknown category '{fm.category}'", hint))
    body = markdown.parse(doc.body)
    links = _resolve(body, d.id, doc.body_line, names, shown, issues)
    questions = []
    for i, qfm in enumerate(fm.questions):
        a_line = doc.line_of(("questions", i, "a")) + 1  # block scalars start on the next line
        parsed = markdown.parse(qfm.a)
        links += _resolve(parsed, d.id, a_line, names, shown, issues)
        questions.append(
            Question(
                id=qfm.id, entry_id=d.id, position=i, q=qfm.q.strip(), answer_md=qfm.a,
                answer_html=markdown.render(parsed), answer_text=parsed.text,
                difficulty=qfm.difficulty or fm.difficulty, added=qfm.added or fm.added,
                line=doc.line_of(("questions", i)),
            )
        )
    for kind, key in (("prerequisite", "prerequisites"), ("related", "related")):
        for i, name in enumerate(getattr(fm, key)):
            line = doc.line_of((key, i))
            target = names.resolve(name)
            if target is None:
                hint = f"did you mean '{s}'?" if (s := names.suggest(name)) else "no entry has that id, title or alias"
                issues.append(issue(shown, line, "unresolved-link", f"{key}: '{name}' is no entry", hint))
            elif target != d.id:
                links.append(Link(d.id, target, kind, line))  # type: ignore[arg-type]
    entry = Entry(
        id=d.id, path=shown, title=fm.title.strip(), aliases=fm.aliases, category=fm.category, tags=fm.tags,
        difficulty=fm.difficulty, added=fm.added, summary=fm.summary.strip(), prerequisites=fm.prerequisites,
        related=fm.related, sources=fm.sources, body_md=doc.body, body_html=markdown.render(body),
        body_text=body.text, headings=body.headings, questions=questions, links=dedupe(links),
        content_hash=d.digest, source=d.text,
    )
    entry.rendered_hash = rendered_hash(entry)
    return entry


def rendered_hash(e: Entry) -> str:
    """A hash of what an entry renders to (HTML, text, edges)."""
    h = hashlib.sha1(e.body_html.encode())
    h.update(e.body_text.encode())
    for q in e.questions:
        h.update(q.answer_html.encode())
        h.update(q.answer_text.encode())
    h.update(repr([(l.target, l.kind, l.anchor, l.line) for l in e.links]).encode())
    return h.hexdigest()[:16]


def _check_bank(entries: dict[str, Entry], issues: list[Issue]) -> None:
    """Checks that need the whole bank: anchors, question ids, cycles, orphans, gaps."""
    seen_q: dict[str, Question] = {}
    by_path = {e.id: e.path for e in entries.values()}
    for e in entries.values():
        for link in e.links:
            if link.anchor and link.target in entries:
                slugs = {h.slug for h in entries[link.target].headings}
                if link.anchor not in slugs:
                    known = ", ".join(sorted(slugs)[:8]) or "it has no headings"
                    issues.append(issue(e.path, link.line, "unresolved-anchor",
                                         f"link to '{link.target}#{link.anchor}': no such heading", f"headings: {known}"))
        for q in e.questions:
            if not ID_RE.match(q.id):
                issues.append(issue(e.path, q.line, "bad-question-id", f"question id '{q.id}' is not valid",
                                     "use lowercase letters, digits and dashes, e.g. " f"'{e.id}-1'"))
            if q.id in seen_q:
                other = seen_q[q.id]
                issues.append(issue(e.path, q.line, "duplicate-question-id",
                                     f"duplicate question id '{q.id}': also in {by_path[other.entry_id]}:{other.line}"))
                issues.append(issue(by_path[other.entry_id], other.line, "duplicate-question-id",
                                     f"duplicate question id '{q.id}': also in {e.path}:{q.line}"))
            else:
                seen_q[q.id] = q
    for cycle in prerequisite_cycles(entries):
        first = entries[cycle[0]]
        line = next((l.line for l in first.links if l.kind == "prerequisite" and l.target == cycle[1]), 1)
        issues.append(issue(first.path, line, "prerequisite-cycle", "prerequisite cycle: " + " -> ".join(cycle),
                             "prerequisites mean 'learn this first'; remove one edge (use `related` instead)"))
    has_in = {l.target for e in entries.values() for l in e.links}
    for e in entries.values():
        warn = lambda code, msg, hint="": issues.append(issue(e.path, 1, code, msg, hint, "warning"))  # noqa: E731
        if not e.links and e.id not in has_in and len(entries) > 1:
            warn("orphan", f"entry '{e.id}' has no links in or out", "link it from a related entry with [[" + e.id + "]]")
        if not e.questions:
            warn("no-questions", "entry has no questions", "add interview questions under `questions:`")
        if not e.summary:
            warn("no-summary", "entry has no summary", "add a one-sentence `summary:`")
        if not e.sources:
            warn("no-sources", "entry has no sources", "cite a paper, official docs or a spec under `sources:`")


def load_corpus(entries_dir: Path, progress: Progress | None = None, cache: LoadCache | None = None) -> Corpus:
    """Read, validate, link and render the bank in `entries_dir`. With a `cache` (from an earlier
    load), unchanged files are reused instead of parsed; the result is the same either way.
    The corpus's `cache` is what this load parsed, for the next one."""
    issues: list[Issue] = []
    fresh = LoadCache()
    categories = load_categories(entries_dir, issues)
    files = entry_files(entries_dir) if entries_dir.is_dir() else []
    if not entries_dir.is_dir():
        issues.append(issue(str(entries_dir), 1, "no-entries", "entries folder does not exist"))
    # Read every file whose stat changed (cheap), then parse the ones the cache does not have,
    # in two processes
    drafts_at: dict[int, Draft] = {}
    todo: list[tuple[int, Path, str, str]] = []
    for i, path in enumerate(files):
        shown = str(path)
        known = cache.stats.get(shown) if cache is not None else None
        if known is not None and (shown, known[3]) in cache.drafts and stat_of(shown) == known[:3]:
            drafts_at[i] = cache.drafts[(shown, known[3])]
            fresh.stats[shown] = known  # settled when it was read, and unchanged since
            continue
        stamped = read_stamped(path, shown, issues)
        if stamped is None:
            continue
        key, text, digest, settled = stamped
        if settled:
            fresh.stats[shown] = (*key, digest)
        hit = cache.drafts.get((shown, digest)) if cache is not None else None
        if hit is not None:
            drafts_at[i] = hit
        else:
            todo.append((i, path, text, digest))

    def parse(item: tuple[int, Path, str, str]) -> tuple[Draft | None, list[Issue]]:
        own: list[Issue] = []
        return parse_draft(item[1], str(item[1]), item[2], item[3], own), own

    for (i, *_), (d, own) in zip(todo, Shared("read", todo, parse, PARALLEL_MIN).result(progress, "read")):
        issues.extend(own)
        if d is not None:
            drafts_at[i] = d
    drafts = [drafts_at[i] for i in sorted(drafts_at)]
    fresh.drafts.update(((d.path, d.digest), d) for d in drafts)
    drafts = _unique(drafts, issues)
    inputs = _names_inputs(drafts)
    if cache is not None and cache.names is not None and cache.names[0] == inputs:
        fresh.names = cache.names
    else:
        own: list[Issue] = []
        fresh.names = (inputs, _names(drafts, own), own)
    _, names, own = fresh.names
    issues.extend(own)
    cats = tuple(categories.items())
    rendered = {}
    missing = []
    # the cache's renderings were all checked against its names: the same names answer alike
    same_names = cache is not None and fresh.names is cache.names
    for d in drafts:
        hit = cache.rendered.get((d.path, d.digest, cats)) if cache is not None else None
        if hit is not None and (same_names or same_answers(names, hit[2])):
            rendered[d.id] = hit
        else:
            missing.append(d)

    def render(d: Draft) -> tuple[Entry, list[Issue], list[tuple]]:
        own: list[Issue] = []
        recorded = RecordedNames(names)
        entry = render_entry(d, recorded, categories, own)
        # Its source texts are the draft's, here too: the forked half need not send them back
        # (they are half its bytes) and the cache then holds one copy.
        entry.source = entry.body_md = ""
        for q in entry.questions:
            q.answer_md = ""
        return entry, own, recorded.lookups

    for d, result in zip(missing, Shared("render", missing, render, PARALLEL_MIN).result(progress, "render")):
        entry = result[0]
        entry.source, entry.body_md = d.text, d.doc.body
        for q, qfm in zip(entry.questions, d.fm.questions):
            q.answer_md = qfm.a
        rendered[d.id] = result
    entries: dict[str, Entry] = {}
    for d in drafts:
        fresh.rendered[(d.path, d.digest, cats)] = rendered[d.id]
        entry, own, _ = rendered[d.id]
        entries[d.id] = entry
        issues.extend(own)
    _check_bank(entries, issues)
    digest = hashlib.sha256(f"llm-kb {__version__}\n".encode())
    cat_path = entries_dir / CATEGORIES_FILE
    if cat_path.is_file():
        digest.update(cat_path.read_bytes())
    for d in drafts:
        digest.update(f"{d.path}\0{d.digest}\n".encode())
    return Corpus(
        entries=dict(sorted(entries.items())), categories=categories,
        issues=sorted(set(issues), key=lambda i: (i.path, i.line, i.code, i.message)),
        backlinks=backlinks(entries), input_hash=digest.hexdigest(), cache=fresh,
    )
