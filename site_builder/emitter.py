"""The site emitter: full builds, and incremental builds that re-render only what changed.

Every output file has a fingerprint of what it shows (page contexts are plain data, see
`context.py`; data files are hashed whole). A full build renders everything and records the
fingerprints in `site-state.pickle` beside `manifest.json`. An incremental build hard-links the
previous `site/`, recomputes the fingerprints (cheap: no rendering) and re-renders only the
files whose fingerprint changed: the edited entries, the neighbours whose lists, titles,
backlinks or previous/next changed, and the list pages, map and data files that show them.
It removes the pages that no longer exist. A change of this package's code, templates or
assets, of the core's code, or of the base URL makes it fall back to a full build.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import shutil
from collections.abc import Callable
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

from jinja2 import BytecodeCache, Environment, FileSystemBytecodeCache, PackageLoader, select_autoescape
from jinja2.bccache import Bucket
from markupsafe import Markup, escape
from pygments.formatters import HtmlFormatter

import kb
from kb.analysis import bank_tokenizer, mentions
from kb.build import Changes, link_tree, write_file
from kb.codehash import code_hash
from kb.forking import Job, Shared
from kb.model import Corpus, Entry
from site_builder import context as ctxmod
from site_builder import feeds, graphmap, practice, searchdata
from site_builder.context import DIFFICULTY, SiteData, site_data

Progress = Callable[[str, int, int], None]
STATE_FILE = "site-state.pickle"  # our own file in the build folder, like kb.build.LOAD_CACHE
STATE_VERSION = 3
FORK_MIN = 200  # pages, fragments or map nodes to make from which a forked child shares the work
ANSWERS = "static/data/answers-"  # answer shards: <ANSWERS><n>.js
PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"


def _digest(*parts: str | bytes) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return h.hexdigest()


def _key(data: object) -> bytes:
    """Stable bytes of plain data (dicts keep insertion order) for fingerprints: a pickle without
    its memo (so equal data gives equal bytes whatever objects it shares), 3x faster than repr."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.fast = True
    pickler.dump(data)
    return buf.getvalue()


def card_key(e: Entry) -> str:
    """A digest of everything pages other than an entry's own show about it (lists, maps,
    neighbours' pages, practice data, feed): not its body or answers. Remembered per entry by
    what determines it (its file and what it rendered to: the titles its links read)."""
    return _remembered(_CARDS, (e.id, e.content_hash, e.rendered_hash), lambda: _card_key(e))


def _remembered(memo: dict, key: tuple, make: Callable[[], str]) -> str:
    hit = memo.get(key)
    if hit is None:
        if len(memo) > 1 << 16:  # a long `kb build --watch` session: start afresh
            memo.clear()
        hit = memo[key] = make()
    return hit


_CARDS: dict[tuple[str, str, str], str] = {}


def own_key(e: Entry) -> str:
    """A digest of what an entry's own page shows of it: its file and what it rendered to."""
    return _remembered(_OWN, (e.content_hash, e.rendered_hash), lambda: _digest(e.content_hash, e.rendered_hash))


def answers_key(e: Entry) -> str:
    """A digest of an entry's questions' ids and rendered answers (what its answer shard holds),
    remembered per version of the entry: a watching build hashes only the edited entries'."""
    return _remembered(_ANSWER_KEYS, (e.id, e.content_hash, e.rendered_hash),
                       lambda: _digest(*(part for q in e.questions for part in (q.id, q.answer_html))))


_OWN: dict[tuple[str, str], str] = {}
_ANSWER_KEYS: dict[tuple[str, str, str], str] = {}


def _card_key(e: Entry) -> str:
    return _digest(_key((e.id, e.title, e.aliases, e.category, e.tags, e.difficulty, str(e.added),
                         feeds.summary_of(e), [(l.target, l.kind) for l in e.links],
                         [(q.id, q.q, q.difficulty, str(q.added)) for q in e.questions])))


def _stale_contexts(corpus: Corpus, site: SiteData, old_cards: dict[str, str], cards: dict[str, str],
                    deps: dict[str, list[str]], old_orders: dict[str, str], orders: dict[str, str]) -> set[str] | None:
    """The entries whose page context may show something else than in the previous build (None:
    any may). An entry page shows of other entries only the cards of its neighbours (links either
    way, read from the previous build's `deps` and from the changed entries' links now), of its
    previous and next in its category (also in `deps`) and its category's order (position).
    The other pages keep their fingerprints without computing their contexts: a title edit
    costs its neighbours' pages, not the bank's."""
    if orders.keys() != old_orders.keys():  # a category came or went: the map's colours may shift
        return None
    changed = {i for i in cards.keys() | old_cards.keys() if cards.get(i) != old_cards.get(i)}
    if not changed:
        return set()
    stale = set(changed)
    for i, around in deps.items():  # neighbours then: a changed card there, or a link now gone
        if not changed.isdisjoint(around):
            stale.add(i)
    for i in changed & corpus.entries.keys():  # neighbours now: what a changed entry links to
        stale.update(link.target for link in corpus.entries[i].links)
    for key, ids in site.by_category.items():  # an entry moved, came or went: its category's order
        if old_orders.get(key) != orders[key]:
            stale.update(ids)
    return stale


def code_key() -> str:
    """Hash of everything besides the bank that shapes the output: our code and the core's."""
    return _digest(code_hash(PACKAGE_DIR, Path(kb.__file__).resolve().parent), str(STATE_VERSION))


LINK_RE = re.compile(r"https?://[^\s<>\"'）)\]，。]+|arXiv:\s?(\d{4}\.\d{4,5})(?:v\d+)?", re.I)


def linkify(text: str) -> Markup:
    """Escape a source line and link its URLs and arXiv ids (opened only when clicked)."""
    out, last = [], 0
    for m in LINK_RE.finditer(text):
        url = f"https://arxiv.org/abs/{m.group(1)}" if m.group(1) else m.group(0)
        out.append(escape(text[last : m.start()]))
        out.append(Markup('<a class="ext" href="{}" rel="noopener noreferrer">{}</a>').format(url, m.group(0)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


class _Environment(Environment):
    """Jinja2's environment, reading plain dicts (every page context) key first: `c.title` on a
    dict otherwise tries the attribute, fails, then the key; the failures cost a sixth of
    rendering an entry page. Jinja's own order stays for everything else (a key that is
    missing falls back to it too)."""

    def getattr(self, obj: object, attribute: str) -> object:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class _TemplateCache(FileSystemBytecodeCache):
    """Jinja2's cache of compiled templates in a folder, where a file that cannot be read or
    written is a miss, not a failed build (a full disk, a temp cleaner, a truncated file)."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _compiled_templates() -> BytecodeCache | None:
    """The templates, compiled, in Jinja2's own per-user folder of the temp directory:
    compiling them took 0.12 s of every build, loading them takes a few ms. A cached template
    is used only for the same source (Jinja checks) and the same code of ours (the file name
    carries `code_key`: the environment's options live in this file). None when the folder is
    not safe to use (Jinja checks that it is the user's own, mode 0700)."""
    ours = f"__llm-kb-{code_key()}-"
    try:
        cache = _TemplateCache(pattern=ours + "%s.cache")
        stale = [n for n in os.listdir(cache.directory) if n.startswith("__llm-kb-") and not n.startswith(ours)]
    except (OSError, RuntimeError):
        return None
    for name in stale:  # other versions of our code compiled these: the folder must not grow with each
        try:
            os.unlink(os.path.join(cache.directory, name))
        except OSError:
            pass
    return cache


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Templates compiled once per process (or loaded compiled, see `_compiled_templates`);
    autoescape on for HTML and XML."""
    env = _Environment(loader=PackageLoader("site_builder", "templates"), autoescape=select_autoescape(["html", "xml"]),
                       trim_blocks=True, lstrip_blocks=True, auto_reload=False, bytecode_cache=_compiled_templates())
    env.globals["DIFFICULTY"] = DIFFICULTY
    env.globals["BADGE"] = {n: Markup(
        f'<span class="diff d{n}" title="难度 {n}/3"><span class="dots" aria-hidden="true">'
        + "".join(f'<i class="{"on" if i < n else "off"}"></i>' for i in range(3)) + f"</span>{label}</span>")
        for n, label in DIFFICULTY.items()}
    env.filters["linkify"] = linkify
    return env


def pygments_css() -> str:
    """Code colours: a light and a dark Pygments style, switched by prefers-color-scheme."""
    def rules(style: str) -> str:
        lines = HtmlFormatter(style=style).get_style_defs(".highlight").splitlines()
        return "\n".join(line for line in lines if line.startswith(".highlight"))

    return (f"@media not all and (prefers-color-scheme: dark), print {{\n{rules('default')}\n}}\n"
            f"@media screen and (prefers-color-scheme: dark) {{\n{rules('github-dark')}\n}}\n")


def build_date() -> date:
    """Today, or the day of SOURCE_DATE_EPOCH (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc).date()
    return date.today()


class Writer:
    """Writes a file only when its fingerprint differs from the previous build's."""

    def __init__(self, root: Path, previous: dict[str, str]) -> None:
        self.root = root
        self.base = str(root) + os.sep  # for os.path checks: pathlib costs ~20 us a path, 1,000 pages a build
        self.previous = previous
        self.fingerprints: dict[str, str] = {}
        self.written: set[str] = set()

    def page(self, rel: str, fp: str, render: Callable[[], str | bytes]) -> bool:
        """Write `rel` unless the previous build's has this fingerprint; whether it was written."""
        self.fingerprints[rel] = fp
        if self.previous.get(rel) == fp and os.path.isfile(self.base + rel):
            return False
        write_file(self.base + rel, render())
        self.written.add(rel)
        return True

    def keep(self, rel: str) -> bool:
        """Keep the previous build's file as it is (it was hard-linked in); False if there is none."""
        if rel not in self.previous or not os.path.isfile(self.base + rel):
            return False
        self.fingerprints[rel] = self.previous[rel]
        return True

    def data(self, rel: str, content: str) -> None:
        raw = content.encode()  # once, for the fingerprint and the file
        self.page(rel, _digest(raw), lambda: raw)

    def remove_stale(self) -> list[str]:
        gone = sorted(set(self.previous) - set(self.fingerprints))
        for rel in gone:
            (self.root / rel).unlink(missing_ok=True)
        return gone


class SiteEmitter:
    """Writes the static study site into `out / "site"`; see docs/site.md."""

    name = "site"

    def __init__(self, base_url: str = "", today: date | None = None) -> None:
        self.base_url = feeds.normalize_base_url(base_url)
        self.today = today
        self.last: dict = {}  # what the last run wrote and removed (for tests and benchmarks)
        self._memo: tuple[tuple[int, int, int], dict] | None = None  # the state file last written, and its stat

    def key(self) -> str:
        return _digest(code_key(), self.base_url)

    def emit(self, corpus: Corpus, out: Path, progress: Progress | None = None) -> None:
        site_dir = out / "site"
        if site_dir.exists():
            shutil.rmtree(site_dir)
        self._copy_static(site_dir)
        self._run(corpus, out, None, progress)

    def partial_emit(self, corpus: Corpus, out: Path, previous_build_dir: Path, changes: Changes,
                     progress: Progress | None = None) -> bool:
        """Re-render only what changed since `previous_build_dir`; False means: do a full emit."""
        try:
            state = self._remembered(previous_build_dir / STATE_FILE)
            if state is None:
                state = pickle.loads((previous_build_dir / STATE_FILE).read_bytes())
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            return False
        prev_site = previous_build_dir / "site"
        if not isinstance(state, dict) or state.get("key") != self.key() or not prev_site.is_dir():
            return False
        site_dir = out / "site"
        if site_dir.exists():
            shutil.rmtree(site_dir)
        link_tree(prev_site, site_dir)
        self._run(corpus, out, state, progress)
        return True

    # -- the one pipeline of full and partial builds -------------------------------------------

    def _copy_static(self, site_dir: Path) -> None:
        static = site_dir / "static"
        static.mkdir(parents=True)
        for path in sorted(STATIC_DIR.iterdir()):
            if path.is_file():
                shutil.copyfile(path, static / path.name)
        (static / "pygments.css").write_text(pygments_css(), encoding="utf-8")

    def _run(self, corpus: Corpus, out: Path, state: dict | None, progress: Progress | None) -> None:
        state = state or {}
        self.last = {}
        jobs: list[Job | Shared] = []  # work handed to forked children while pages render here
        try:
            self._pages(corpus, out, state, progress, jobs)
        finally:
            for job in jobs:
                job.cancel()  # what a failure left running (a no-op for collected jobs)

    def _pages(self, corpus: Corpus, out: Path, state: dict, progress: Progress | None, jobs: list[Job]) -> None:
        site_dir = out / "site"
        search = self._start_search(corpus, state.get("search", {}))
        jobs.append(search)
        today = self.today or build_date()
        site = site_data(corpus, today, state.get("slugs"))
        w = Writer(site_dir, state.get("pages", {}))
        env = environment()
        entries = list(corpus.entries.values())
        has_feed = bool(self.base_url)
        # Pages other than an entry's own show only its card (title, tags, links, questions...):
        # when no card changed, an edit can change only its own page, the search data and the
        # answers, so every other page is kept without computing what it would show.
        cards = {e.id: card_key(e) for e in entries}
        bank = _digest(today.isoformat(), _key(corpus.categories))
        same_bank = state.get("bank") == bank
        same_cards = same_bank and state.get("cards") == cards
        own = {e.id: own_key(e) for e in entries}
        orders = {k: _digest(*ids) for k, ids in site.by_category.items()}
        layout = None
        if not same_cards:  # the map will be drawn: lay it out meanwhile
            layout = self._start_layout(site, state.get("layouts", {}))
            jobs.append(layout)
        deps: dict[str, list[str]] = dict(state.get("deps", {})) if same_bank else {}
        stale = _stale_contexts(corpus, site, state.get("cards", {}), cards, deps, state.get("orders", {}), orders) \
            if same_bank else None
        if stale is None:
            deps = {}
        old_own = state.get("own", {})
        todo = [e for e in entries if (stale is None or e.id in stale or e.id not in deps)
                or not (old_own.get(e.id) == own[e.id] and w.keep(f"{e.id}.html"))]
        template = env.get_template("entry.html")  # compiled before a fork, not in each process

        def entry_page(e: Entry) -> tuple[str, str, bool, list[str]]:
            ctx = ctxmod.entry_context(site, e)
            rel, fp = f"{e.id}.html", _digest(own[e.id], _key(ctx))
            return rel, fp, w.page(rel, fp, lambda: template.render(
                entry=e, c=ctx, root="", has_feed=has_feed, local_map=self._local_map(site, e, ctx))), \
                [i for i, *_ in ctx["map"]] + [ctx[k]["id"] for k in ("prev", "next") if ctx[k]]

        # Entry pages are most of the site: in a full build a forked child starts on them while
        # this process writes the other pages, then both take the rest (from a shared counter, so
        # they finish together: the index, in its own processes, ends about then too).
        pages = Shared("site", todo, entry_page, FORK_MIN)
        jobs.append(pages)
        self._answers(site, w)
        entry_pages = {f"{e.id}.html" for e in entries}
        bank_pages = [rel for rel in w.previous if rel not in entry_pages and not rel.startswith(ANSWERS)]
        if same_cards and all(w.keep(rel) for rel in bank_pages):
            layouts = state.get("layouts", {})
        else:
            self._lists(site, w)
            schedule = practice.daily_schedule(site)
            self._home_and_tools(site, w, schedule)
            self._data(site, w, schedule)
            self._feeds(site, w)
            layouts = self._map(site, w, layout or self._start_layout(site, state.get("layouts", {})))
        for e, (rel, fp, written, neighbours) in zip(todo, pages.result(progress, "site")):
            w.fingerprints[rel] = fp  # the child's Writer is gone: record its pages here
            deps[e.id] = neighbours
            if written:
                w.written.add(rel)
        for gone in deps.keys() - corpus.entries.keys():
            del deps[gone]
        self.last["contexts"] = len(todo)
        records = self._finish_search(site, w, search)
        removed = w.remove_stale()
        self.last.update(written=sorted(w.written), removed=removed, pages=len(w.fingerprints))
        new_state = {"key": self.key(), "version": STATE_VERSION, "pages": w.fingerprints, "slugs": site.slugs,
                     "layouts": layouts, "search": records, "bank": bank, "cards": cards, "own": own,
                     "deps": deps, "orders": orders}
        # a pickle: the search fragments make it megabytes of JSON text, 10x slower to write and read
        write_file(out / STATE_FILE, pickle.dumps(new_state, protocol=pickle.HIGHEST_PROTOCOL))
        st = (out / STATE_FILE).stat()  # the file keeps its inode when the build folder is renamed
        self._memo = ((st.st_ino, st.st_mtime_ns, st.st_size), new_state)

    def _remembered(self, path: Path) -> dict | None:
        """The state this emitter wrote as `path` in an earlier run of this process (kb.watch),
        sparing the JSON parse; None when `path` is another file."""
        if self._memo is None:
            return None
        st = path.stat()
        return self._memo[1] if self._memo[0] == (st.st_ino, st.st_mtime_ns, st.st_size) else None

    def _local_map(self, site: SiteData, e: Entry, ctx: dict) -> Markup:
        center = graphmap.Node(e.id, ctx["self"][0], e.title, e.category, ctx["self"][1], f"{e.id}.html")
        nbs = [(graphmap.Node(i, label, title, "", cat, f"{i}.html"), kind, out)
               for i, label, title, cat, kind, out in ctx["map"]]
        return Markup(graphmap.local_map_svg(center, nbs))

    def _render(self, name: str, **kw: object) -> Callable[[], str]:
        """A renderer, called only when the page must be written (templates compile on first use)."""
        return lambda: environment().get_template(name).render(has_feed=bool(self.base_url), **kw)

    def _lists(self, site: SiteData, w: Writer) -> None:
        for key in site.by_category:
            c = ctxmod.category_context(site, key)
            w.page(f"c/{key}.html", _digest("category", _key(c)), self._render("category.html", c=c, root="../"))
        for tag in site.by_tag:
            c = ctxmod.tag_context(site, tag)
            w.page(f"t/{site.slugs[tag]}.html", _digest("tag", _key(c)), self._render("tag.html", c=c, root="../"))
        c = ctxmod.tags_index_context(site)
        w.page("t/index.html", _digest("tags", _key(c)), self._render("tags.html", c=c, root="../"))
        c = ctxmod.questions_context(site)
        w.page("questions.html", _digest("questions", _key(c)), self._render("questions.html", c=c, root=""))

    def _start_layout(self, site: SiteData, cached: dict) -> Job:
        """Start laying out the concept map's clusters (a cluster whose nodes, edges and label
        widths did not change keeps its cached layout); with many nodes to place, in a forked
        child while the pages are rendered here. The result: (edges, layouts by category)."""
        corpus = site.corpus
        edges = graphmap.strongest_pairs((l.source, l.target, l.kind) for e in corpus.entries.values()
                                         for l in e.links if l.target in corpus.entries)
        widths = {i: graphmap.node_width(label) for i, label in site.labels.items()}
        inner: dict[str, list[tuple[str, str]]] = {}
        for s, t, _ in edges:
            cs, ct = corpus.entries[s].category, corpus.entries[t].category
            if cs == ct:
                inner.setdefault(cs, []).append((s, t))
        keys = {key: graphmap.cluster_key(ids, inner.get(key, []), widths) for key, ids in site.by_category.items()}
        todo = [key for key, ck in keys.items() if cached.get(key, {}).get("key") != ck]

        def lay_out() -> tuple[list, dict]:
            layouts = {}
            for key, ids in site.by_category.items():
                if key in todo:
                    pos = graphmap.layout_cluster(ids, inner.get(key, []), widths)
                else:
                    pos = {i: tuple(p) for i, p in cached[key]["pos"].items()}
                layouts[key] = {"key": keys[key], "pos": pos}
            return edges, layouts

        return Job("map layout", lay_out, in_child=sum(len(site.by_category[k]) for k in todo) >= FORK_MIN)

    def _map(self, site: SiteData, w: Writer, layout: Job) -> dict:
        """Write the concept map page; the cluster layouts, for the next build."""
        edges, layouts = layout.result()
        clusters = [graphmap.Cluster(key, site.cat_name(key), f"c/{key}.html", site.cat_index[key],
                                     layouts[key]["pos"]) for key in site.by_category]
        nodes = {e.id: graphmap.Node(e.id, site.labels[e.id], e.title, e.category, site.cat_index[e.category],
                                     f"{e.id}.html") for e in site.corpus.entries.values()}
        svg = graphmap.whole_map_svg(nodes, edges, clusters)
        legend = [{"key": k, "name": n, "index": site.cat_index[k]} for k, n in site.categories.items()]
        w.page("map.html", _digest("map", svg, _key(legend)),
               self._render("map.html", svg=Markup(svg), legend=legend, root="", n_nodes=len(nodes), n_edges=len(edges)))
        return layouts

    def _home_and_tools(self, site: SiteData, w: Writer, schedule: dict) -> None:
        daily = practice.question_of(schedule, site.today)
        c = ctxmod.home_context(site, daily)
        w.page("index.html", _digest("home", _key(c)), self._render("index.html", c=c, root=""))
        f = ctxmod.filters_context(site)
        sched = {"first": schedule["start"], "last": (date.fromisoformat(schedule["start"])
                                                      .toordinal() + len(schedule["days"]) - 1)}
        sched["last"] = date.fromordinal(sched["last"]).isoformat()
        w.page("practice.html", _digest("practice", _key(f), _key(sched)),
               self._render("practice.html", c=f, sched=sched, root=""))
        w.page("search.html", _digest("search", _key(site.categories)),
               self._render("search.html", root=""))
        base_path = ""
        if self.base_url:  # the 404 page is served at any depth: link from the site's own path
            from urllib.parse import urlsplit
            base_path = urlsplit(self.base_url).path or "/"
        w.page("404.html", _digest("404", base_path), self._render("404.html", root=base_path))

    def _start_search(self, corpus: Corpus, cached: dict) -> Job:
        """Start making the search data: the fragments of entries whose source did not change
        and whose text contains no word that entered or left the segmenter's dictionary are
        reused (a renamed entry changes the dictionary; only texts with those words segment
        anew). With many to make (a full build), a forked child makes them while the pages
        are rendered here: the data needs no page. The job's result is the state to keep."""
        tok = bank_tokenizer(corpus.names)
        old = cached.get("fragments", {})
        moved: set[str] = set()
        if cached.get("words") != list(tok.words):
            if "words" in cached:
                moved = set(tok.words) ^ set(cached["words"])
            else:
                old = {}
        fragments: dict[str, list[str]] = {}
        todo = []
        for e in corpus.entries.values():
            hit = old.get(e.id)
            if hit and hit[0] == e.content_hash and not (moved and mentions(e.source, moved)):
                fragments[e.id] = hit
            else:
                todo.append(e)
        self.last["segmented"] = len(todo)

        def make() -> dict:
            made = {e.id: [e.content_hash, searchdata.entry_fragment(tok, e)] for e in todo}
            return {"words": list(tok.words),
                    "fragments": {i: fragments.get(i) or made[i] for i in corpus.entries}}

        return Job("search data", make, in_child=len(todo) >= FORK_MIN)

    def _finish_search(self, site: SiteData, w: Writer, search: Job) -> dict:
        """Write the search data file; what the next build can reuse of it."""
        records = search.result()
        w.data("static/data/search.js", searchdata.search_data_js([f[1] for f in records["fragments"].values()],
                                                                   site.categories))
        return records

    def _data(self, site: SiteData, w: Writer, schedule: dict) -> None:
        """The practice page's question list and daily schedule (cards only: see _answers)."""
        shards = practice.shard_count(len(site.corpus.questions))
        w.data("static/data/questions.js", practice.questions_js(site, shards))
        w.data("static/data/daily.js", practice.daily_js(schedule))

    def _answers(self, site: SiteData, w: Writer) -> None:
        """The answer shards, each fingerprinted by its entries' `answers_key`s."""
        corpus = site.corpus
        shards = practice.shard_count(len(corpus.questions))
        members: dict[int, list[str]] = {i: [] for i in range(shards)}
        for entry_id in corpus.entries:
            members[practice.shard_of(entry_id, shards)].append(entry_id)
        for i, ids in members.items():
            fp = _digest("answers", str(i), *(part for entry_id in ids
                                               for part in (entry_id, answers_key(corpus.entries[entry_id]))))
            w.page(f"{ANSWERS}{i}.js", fp, lambda i=i, ids=ids: practice.answers_js(i, practice.answers_of(corpus, ids)))

    def _feeds(self, site: SiteData, w: Writer) -> None:
        if not self.base_url:
            return
        corpus = site.corpus
        pages = (["index.html", "questions.html", "practice.html", "map.html", "search.html", "t/index.html"]
                 + [f"c/{k}.html" for k in site.by_category]
                 + [f"{e.id}.html" for e in corpus.entries.values()]
                 + [f"t/{site.slugs[t]}.html" for t in site.by_tag])
        lastmod = {f"{e.id}.html": e.added.isoformat() for e in corpus.entries.values() if e.added}
        w.data("sitemap.xml", feeds.sitemap_xml(self.base_url, pages, lastmod))
        w.data("feed.xml", feeds.atom_xml(self.base_url, corpus, site.categories, site.today))
