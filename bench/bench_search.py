"""In-process search latency: our engine (Whoosh + RRF) beside SQLite FTS5 on the same tokens.

    python -m bench.bench_search --sizes 1000 10000 [--real] [--queries 300]

For each bank (generated with bench.corpus, and the real bank with --real) it builds the index
with `kb build`, then times the same query mix on:
- `SearchIndex.search` — the full engine the API calls (three routes, RRF, facets, snippets);
- FTS5: one table of the same segmented text (our analyzer's index terms joined by spaces,
  unicode61), queried with the same OR of query terms, bm25-ranked, the same depth (100).
The query mix: concept names, aliases, typed questions and mixed zh/en; no filler words.
Prints a table; `--json PATH` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.corpus import generate
from kb.build import IndexEmitter, build
from kb.search import ROUTE_DEPTH, SearchIndex

ROOT = Path(__file__).resolve().parent.parent


def queries(ix: SearchIndex, n: int, seed: int = 3) -> list[str]:
    """A reproducible mix of names, aliases, typed questions and mixed zh/en queries."""
    rng = random.Random(seed)
    entries = list(ix.entries.values())
    questions = list(ix.questions.values())
    out = []
    for i in range(n):
        e = rng.choice(entries)
        kind = i % 4
        if kind == 0:
            out.append(e["title"])
        elif kind == 1:
            out.append(rng.choice(e["aliases"] or [e["title"]]))
        elif kind == 2:
            out.append(rng.choice(questions)["q"])
        else:
            words = ix.tokenizer.query_terms(e["summary"])[:2]
            out.append(" ".join([rng.choice(e["aliases"] or [e["title"]]).split()[0], *words]))
    return out


def fts5_table(ix: SearchIndex) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("create virtual table docs using fts5(key unindexed, kind unindexed, names, lead, text)")
    seg = lambda s: " ".join(ix.tokenizer.term_counts(s).elements())  # noqa: E731
    rows = [(k, "entry", seg(" ".join([k, e["title"], *e["aliases"]])), seg(e["summary"] + " " + " ".join(e["tags"])),
             seg(e["text"])) for k, e in ix.entries.items()]
    rows += [(k, "question", "", seg(q["q"]), seg(q["text"])) for k, q in ix.questions.items()]
    db.executemany("insert into docs values (?, ?, ?, ?, ?)", rows)
    return db


def fts5_search(db: sqlite3.Connection, ix: SearchIndex, query: str) -> list[str]:
    terms = ix.tokenizer.query_terms(query)
    if not terms:
        return []
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    hits = []
    for kind in ("entry", "question"):  # the same two BM25 routes as ours
        hits += [r[0] for r in db.execute(
            "select key from docs where docs match ? and kind = ? order by bm25(docs, 4.0, 2.0, 1.0) limit ?",
            (match, kind, ROUTE_DEPTH))]
    return hits


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def time_all(fn, qs: list[str]) -> dict[str, float]:  # noqa: ANN001
    for q in qs[:20]:
        fn(q)  # warm caches
    took = []
    for q in qs:
        t = time.perf_counter()
        fn(q)
        took.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(statistics.median(took), 2), "p99_ms": round(pct(took, 99), 2),
            "mean_ms": round(statistics.fmean(took), 2)}


def run(bank: Path, label: str, n_queries: int, work: Path) -> dict:
    out = work / f"build-{label}"
    t = time.perf_counter()
    build(bank, out, [IndexEmitter()])
    index_s = time.perf_counter() - t
    ix = SearchIndex(out / "index")
    qs = queries(ix, n_queries)
    ours = time_all(lambda q: ix.search(q, limit=10), qs)
    db = fts5_table(ix)
    ref = time_all(lambda q: fts5_search(db, ix, q), qs)
    ix.close()
    return {"bank": label, "entries": len(ix.entries), "questions": len(ix.questions), "index_build_s": round(index_s, 1),
            "ours": ours, "fts5": ref, "p99_ratio": round(ours["p99_ms"] / max(ref["p99_ms"], 0.01), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--real", action="store_true", help="also the real bank in entries/")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.real:
            results.append(run(ROOT / "entries", "real", args.queries, work))
        for n in args.sizes:
            results.append(run(generate(n, work / f"gen{n}"), f"gen{n}", args.queries, work))
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{__import__('os').cpu_count()} cores")
    print("| bank | entries | questions | ours p50 | ours p99 | FTS5 p50 | FTS5 p99 | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['bank']} | {r['entries']} | {r['questions']} | {r['ours']['p50_ms']} ms | {r['ours']['p99_ms']} ms | "
              f"{r['fts5']['p50_ms']} ms | {r['fts5']['p99_ms']} ms | {r['p99_ratio']}x |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
