"""What the pages show, derived once from the Corpus: orders, neighbour lists, page contexts.

Every page context is plain JSON-able data (no Entry objects, no rendered HTML), so an
incremental build can fingerprint it cheaply and re-render only the pages whose inputs changed.
An entry page's own fields come from its Entry (covered by its rendered HTML in the
fingerprint); everything it shows of *other* entries comes through its context.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from kb.model import Corpus, Entry
from site_builder.slugs import short_label, tag_slugs

DIFFICULTY = {1: "基础", 2: "进阶", 3: "深入"}
KIND_LABEL = {"prerequisite": "前置", "related": "相关", "link": "链接"}


@dataclass
class SiteData:
    corpus: Corpus
    today: date
    categories: dict[str, str]  # key -> display name, in site order (only non-empty ones)
    cat_index: dict[str, int]
    by_category: dict[str, list[str]]  # entry ids in learning order
    position: dict[str, tuple[str, int]]  # entry id -> (category, index in its category)
    slugs: dict[str, str]  # tag -> slug
    by_tag: dict[str, list[str]]  # tag -> entry ids (sorted)
    labels: dict[str, str]  # entry id -> short label for maps

    def cat_name(self, key: str) -> str:
        return self.categories.get(key, key)

    def item(self, entry_id: str) -> dict:
        e = self.corpus.entries[entry_id]
        return {"id": e.id, "title": e.title}


def learning_order(entries: list[Entry], ids: set[str]) -> list[str]:
    """Topological order by prerequisites inside one category; ties by difficulty, then id."""
    requires = {e.id: {l.target for l in e.links if l.kind == "prerequisite" and l.target in ids} for e in entries}
    needed_by: dict[str, list[str]] = defaultdict(list)
    for eid, reqs in requires.items():
        for r in reqs:
            needed_by[r].append(eid)
    key = {e.id: (e.difficulty, e.id) for e in entries}
    waiting = {eid: len(reqs) for eid, reqs in requires.items()}
    ready = [key[eid] for eid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, eid = heapq.heappop(ready)
        out.append(eid)
        for nxt in needed_by[eid]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, key[nxt])
    if len(out) < len(entries):  # a cycle (the loader reports it as an error): append the rest
        out += sorted((eid for eid in waiting if eid not in set(out)), key=lambda i: key[i])
    return out


def site_data(corpus: Corpus, today: date, known_slugs: dict[str, str] | None = None) -> SiteData:
    grouped: dict[str, list[Entry]] = defaultdict(list)
    for e in corpus.entries.values():
        grouped[e.category].append(e)
    order = [k for k in corpus.categories if k in grouped] + sorted(k for k in grouped if k not in corpus.categories)
    categories = {k: corpus.categories.get(k, k) for k in order}
    by_category = {k: learning_order(grouped[k], {e.id for e in grouped[k]}) for k in order}
    position = {eid: (k, i) for k, ids in by_category.items() for i, eid in enumerate(ids)}
    by_tag: dict[str, list[str]] = defaultdict(list)
    for e in corpus.entries.values():
        for t in dict.fromkeys(e.tags):
            by_tag[t].append(e.id)
    return SiteData(
        corpus=corpus, today=today, categories=categories,
        cat_index={k: i for i, k in enumerate(corpus.categories) if k in categories} | {
            k: len(corpus.categories) + i for i, k in enumerate(order) if k not in corpus.categories},
        by_category=by_category, position=position,
        slugs=tag_slugs(set(by_tag), known_slugs), by_tag=dict(sorted(by_tag.items())),
        labels={e.id: short_label(e.title, e.aliases) for e in corpus.entries.values()},
    )


def _tags(site: SiteData, tags: list[str], root: str) -> list[dict]:
    return [{"name": t, "href": f"{root}t/{site.slugs[t]}.html"} for t in dict.fromkeys(tags)]


def entry_context(site: SiteData, e: Entry) -> dict:
    """Everything an entry page shows that does not come from the entry itself."""
    corpus = site.corpus
    out: dict[str, list[str]] = {"prerequisite": [], "related": [], "link": []}
    for link in e.links:
        if link.target in corpus.entries and link.target not in out[link.kind]:
            out[link.kind].append(link.target)
    back: dict[str, list[str]] = {}
    for link in corpus.backlinks.get(e.id, []):
        if link.source in corpus.entries:
            back.setdefault(link.source, []).append(link.kind)
    related = out["related"] + [s for s, kinds in back.items() if "related" in kinds and s not in out["related"]]
    cat, idx = site.position[e.id]
    siblings = site.by_category[cat]
    neighbours: dict[str, list] = {}  # id -> [kind, points out]; the strongest kind either way wins
    rank = ("prerequisite", "related", "link").index
    for kind in ("prerequisite", "related", "link"):
        for t in out[kind]:
            neighbours.setdefault(t, [kind, True])
    for s, kinds in back.items():
        best = min(kinds, key=rank)
        if s not in neighbours or rank(best) < rank(neighbours[s][0]):
            neighbours[s] = [best, False]
    return {
        "category": {"key": cat, "name": site.cat_name(cat), "href": f"c/{cat}.html"},
        "tags": _tags(site, e.tags, ""),
        "prerequisites": [site.item(i) for i in out["prerequisite"]],
        "dependents": [site.item(s) for s, kinds in back.items() if "prerequisite" in kinds],
        "related": [site.item(i) for i in related],
        "outgoing": [site.item(i) for i in out["link"]],
        "backlinks": [site.item(s) | {"kinds": [KIND_LABEL[k] for k in kinds]} for s, kinds in back.items()],
        "prev": site.item(siblings[idx - 1]) if idx > 0 else None,
        "next": site.item(siblings[idx + 1]) if idx + 1 < len(siblings) else None,
        "position": [idx + 1, len(siblings)],
        "map": [[i, site.labels[i], corpus.entries[i].title, site.cat_index[corpus.entries[i].category], k, o]
                for i, (k, o) in neighbours.items()],
        "self": [site.labels[e.id], site.cat_index[cat]],
    }


def entry_card(site: SiteData, e: Entry, root: str) -> dict:
    return {"id": e.id, "title": e.title, "summary": e.summary, "difficulty": e.difficulty,
            "n_questions": len(e.questions), "tags": _tags(site, e.tags, root),
            "category": e.category, "category_name": site.cat_name(e.category)}


def category_context(site: SiteData, key: str) -> dict:
    entries = [site.corpus.entries[i] for i in site.by_category[key]]
    tag_count: dict[str, int] = defaultdict(int)
    for e in entries:
        for t in dict.fromkeys(e.tags):
            tag_count[t] += 1
    top = sorted(tag_count.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    return {"key": key, "name": site.cat_name(key), "entries": [entry_card(site, e, "../") for e in entries],
            "n_questions": sum(len(e.questions) for e in entries),
            "tags": [{"name": t, "count": n, "href": f"../t/{site.slugs[t]}.html"} for t, n in top]}


def tag_context(site: SiteData, tag: str) -> dict:
    entries = [site.corpus.entries[i] for i in site.by_tag[tag]]
    return {"name": tag, "slug": site.slugs[tag], "entries": [entry_card(site, e, "../") for e in entries],
            "n_questions": sum(len(e.questions) for e in entries)}


def tags_index_context(site: SiteData) -> dict:
    tags = sorted(site.by_tag.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {"tags": [{"name": t, "count": len(ids), "href": f"{site.slugs[t]}.html"} for t, ids in tags]}


def home_context(site: SiteData, daily: dict | None) -> dict:
    c = site.corpus
    cats = []
    for key, ids in site.by_category.items():
        cats.append({"key": key, "name": site.cat_name(key), "href": f"c/{key}.html", "n_entries": len(ids),
                     "n_questions": sum(len(c.entries[i].questions) for i in ids),
                     "first": [site.item(i) for i in ids[:6]], "more": max(0, len(ids) - 6)})
    recent = sorted(c.entries.values(), key=lambda e: (e.added or date.min, e.id), reverse=True)[:6]
    return {"n_entries": len(c.entries), "n_questions": sum(len(e.questions) for e in c.entries.values()),
            "n_tags": len(site.by_tag), "n_edges": sum(len(e.links) for e in c.entries.values()),
            "categories": cats, "daily": daily,
            "recent": [site.item(e.id) | {"added": e.added.isoformat() if e.added else ""} for e in recent]}


def filters_context(site: SiteData) -> dict:
    return {"categories": [{"key": k, "name": n} for k, n in site.categories.items()],
            "tags": [{"name": t, "slug": site.slugs[t]} for t in site.by_tag]}


def questions_context(site: SiteData) -> dict:
    groups = []
    for key, ids in site.by_category.items():
        qs = []
        for eid in ids:
            e = site.corpus.entries[eid]
            slugs = " ".join(site.slugs[t] for t in dict.fromkeys(e.tags))
            for q in e.questions:
                qs.append({"id": q.id, "q": q.q, "entry_id": e.id, "entry_title": e.title,
                           "difficulty": q.difficulty, "tags": slugs})
        if qs:
            groups.append({"key": key, "name": site.cat_name(key), "questions": qs})
    return filters_context(site) | {"groups": groups, "total": sum(len(g["questions"]) for g in groups)}
