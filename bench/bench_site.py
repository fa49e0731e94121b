"""`kb build` against `mkdocs build` on the same generated Markdown, plus incremental rebuilds.

    python -m bench.bench_site                      # 1,000 and 5,000 entries, one run each
    python -m bench.bench_site --sizes 50 --runs 1  # a quick check
    python -m bench.bench_site --sizes 1000 --runs 3 --json bench/results/site.json

For each size N the bank comes from `bench.corpus.generate(N)` (the same generator as the other
benchmarks). Timed, each as a fresh process, the median of --runs (kb and mkdocs alternate,
and "faster by" is the median of the ratios of runs made back to back, the others listed):
- `kb build --full`: all three artifacts (SQLite store, Whoosh index, static site); the
  per-stage seconds come from its own log lines;
- `mkdocs build` with mkdocs-material, `plugins: [search: {lang: zh}]` (jieba installed) and a
  one-entry nav (its fastest setup; see NOTES.md), over the same .md files;
- both rebuild over their own previous output, each clearing it as it does by default (mkdocs
  deletes `site/`, kb deletes versions past the two newest, in a child while it builds);
- both run from compiled bytecode, as pip installs a package: this checkout's packages are
  compiled first (with PYTHONDONTWRITEBYTECODE set, as on the machines here, Python never
  caches them and kb recompiled its own modules on every run, while mkdocs' came compiled);
- at --incremental-size (default 1,000, or the first size): `kb build` after editing one
  entry's body, and after editing one entry's title (which re-renders its neighbours too),
  each as a fresh process; then the same edits under `kb build --watch` (one warm process,
  what an author runs while writing): the rebuild's own seconds, from its summary line, and
  the seconds from saving the file to that line (which adds the watcher's polling delay).
Prints a table; the site figures in parentheses are the site emitter's own seconds.
"""

from __future__ import annotations

import argparse
import compileall
import json
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import generate

ROOT = Path(__file__).resolve().parent.parent
STAGE_RE = re.compile(r"^(load|store|index|site)(?::| [^:]*:)? .*?in ([0-9.]+)s", re.M)
MODE_RE = re.compile(r"^site: (full|partial) in ([0-9.]+)s", re.M)
MKDOCS_YML = """site_name: llm-kb benchmark
theme:
  name: material
plugins:
  - search:
      lang: zh
nav:
  - index.md
"""


def run(cmd: list[str], cwd: Path | None = None) -> tuple[float, str, float]:
    """(wall seconds, output, CPU seconds of the process and every process it forked)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for descendants included
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return elapsed, proc.stdout + proc.stderr, cpu


def kb_build(bank: Path, out: Path, full: bool) -> dict:
    cmd = [sys.executable, "-m", "kb.cli", "build", "--entries", str(bank), "--out", str(out)]
    wall, log, cpu = run(cmd + (["--full"] if full else []))
    stages = {name: float(sec) for name, sec in STAGE_RE.findall(log)}
    mode = MODE_RE.search(log)
    return {"wall": wall, "cpu": cpu, "stages": stages, "site_mode": mode.group(1) if mode else "?"}


def mkdocs_project(bank: Path, where: Path) -> Path:
    if where.exists():
        shutil.rmtree(where)
    docs = where / "docs"
    docs.mkdir(parents=True)
    for md in bank.glob("*.md"):
        shutil.copyfile(md, docs / md.name)
    (docs / "index.md").write_text("# llm-kb benchmark\n\n生成的条目。\n", encoding="utf-8")
    (where / "mkdocs.yml").write_text(MKDOCS_YML, encoding="utf-8")
    return where


def mkdocs_build(project: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `mkdocs build`. Like `kb build`, which prunes its old versions
    within its own time, it rebuilds over its previous output and removes that itself (its
    default `--clean`), as an author's next build does."""
    wall, _, cpu = run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", "site"], cwd=project)
    return wall, cpu


def edit(bank: Path, what: str) -> None:
    path = sorted(bank.glob("e*.md"))[len(list(bank.glob("e*.md"))) // 2]
    text = path.read_text(encoding="utf-8")
    if what == "body":
        text = text.rstrip("\n") + f"\n\n补充说明 {time.time_ns()}。\n"
    else:
        text = re.sub(r"^title: (.*)$", lambda m: f"title: {m.group(1)} 修订{time.time_ns() % 1000}", text, count=1,
                      flags=re.M)
    path.write_text(text, encoding="utf-8")


BUILT_RE = re.compile(r"^Built \S+: .* in ([0-9.]+)s")


def watch_rebuilds(bank: Path, out: Path, runs: int) -> dict:
    """Edit under `kb build --watch`; per kind of edit, the median rebuild seconds (as the
    watcher reports them) and seconds from the save to the report."""
    import os
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "build", "--watch", "--entries", str(bank), "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()

    def next_build(timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if m := BUILT_RE.match(line):
                return float(m.group(1))
            if line.startswith("Aborted"):
                sys.exit(f"kb build --watch refused a build: {line}")
        sys.exit("kb build --watch did not report a build")

    out_rows: dict = {}
    try:
        next_build()
        for what in ("body", "title"):
            builds, walls = [], []
            for _ in range(runs):
                time.sleep(0.5)  # a new mtime, and the watcher idle as after a save
                t = time.perf_counter()
                edit(bank, what)
                builds.append(next_build())
                walls.append(time.perf_counter() - t)
            out_rows[what] = {"build": median(builds), "save_to_built": median(walls)}
    finally:
        proc.terminate()
        proc.wait()
    return out_rows


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_size(n: int, work: Path, runs: int, with_mkdocs: bool, incremental: bool) -> dict:
    bank = generate(n, work / f"bank-{n}")
    out = work / f"kb-{n}" / "build"
    row: dict = {"entries": n}
    project = mkdocs_project(bank, work / f"mkdocs-{n}") if with_mkdocs else None
    fulls, peers = [], []
    for _ in range(runs):  # alternated: the machine's speed drifts from minute to minute
        fulls.append(kb_build(bank, out, full=True))
        if project:
            peers.append(mkdocs_build(project))
    row["kb_full"] = median([f["wall"] for f in fulls])
    row["kb_cpu"] = median([f["cpu"] for f in fulls])
    row["kb_stages"] = {k: median([f["stages"].get(k, float("nan")) for f in fulls])
                        for k in ("load", "store", "index", "site")}
    if peers:
        row["mkdocs"] = median([wall for wall, _ in peers])
        row["mkdocs_cpu"] = median([cpu for _, cpu in peers])
        row["ratios"] = [p / f["wall"] for f, (p, _) in zip(fulls, peers)]  # each pair ran back to back
    if incremental:
        for what in ("body", "title"):
            results = []
            for _ in range(runs):
                edit(bank, what)
                results.append(kb_build(bank, out, full=False))
            row[f"incr_{what}"] = median([r["wall"] for r in results])
            row[f"incr_{what}_site"] = median([r["stages"].get("site", float("nan")) for r in results])
            row[f"incr_{what}_mode"] = results[-1]["site_mode"]
        row["watch"] = watch_rebuilds(bank, out, max(runs, 3))
    return row


def table(rows: list[dict]) -> str:
    lines = ["| entries | kb build: all three (s) | load / store / index / site (s) | mkdocs-material, zh search (s) | "
             "kb faster by (each pair) | CPU seconds: kb / mkdocs |",
             "|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        st = r["kb_stages"]
        stages = " / ".join(f"{st[k]:.2f}" for k in ("load", "store", "index", "site"))
        mk = r.get("mkdocs")
        pairs = " (" + ", ".join(f"{x:.2f}" for x in r["ratios"]) + ")" if len(r.get("ratios", [])) > 1 else ""
        lines.append(f"| {r['entries']:,} | {r['kb_full']:.2f} | {stages} | {mk:.2f} | "
                     f"{median(r['ratios']):.2f}x{pairs} | {r['kb_cpu']:.1f} / {r['mkdocs_cpu']:.1f} |" if mk
                     else f"| {r['entries']:,} | {r['kb_full']:.2f} | {stages} | - | - | {r['kb_cpu']:.1f} / - |")
    for r in rows:
        for what, label in (("body", "body edit"), ("title", "title edit")):
            if f"incr_{what}" not in r:
                continue
            site, wall = r[f"incr_{what}_site"], r[f"incr_{what}"]
            lines.append("")
            lines.append(f"Incremental `kb build` after one {label} at {r['entries']:,} entries: {wall:.2f} s "
                         f"({wall / r['kb_full']:.0%} of the full build); site emitter {r[f'incr_{what}_mode']} in "
                         f"{site:.3f} s = {site / r['kb_full']:.1%} of the full build, "
                         f"{site / r['kb_stages']['site']:.1%} of a full site emit.")
        if "watch" in r:
            lines.append("")
            for what, label in (("body", "body edit"), ("title", "title edit")):
                w = r["watch"][what]
                lines.append(f"Under `kb build --watch` at {r['entries']:,} entries, after one {label}: rebuilt in "
                             f"{w['build']:.2f} s ({w['build'] / r['kb_full']:.1%} of the full build); "
                             f"{w['save_to_built']:.2f} s from saving the file to the new build being served.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--runs", type=int, default=1, help="runs per measurement (the median is reported)")
    ap.add_argument("--incremental-size", type=int, default=1000)
    ap.add_argument("--skip-mkdocs", action="store_true")
    ap.add_argument("--work", type=Path, help="keep generated banks and builds here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    incr = args.incremental_size if args.incremental_size in args.sizes else args.sizes[0]
    work = args.work or Path(tempfile.mkdtemp(prefix="kb-bench-site-"))
    for package in ("kb", "site_builder"):  # what `pip install` does (mkdocs' came compiled)
        compileall.compile_dir(ROOT / package, quiet=1)
    rows = []
    try:
        for n in args.sizes:
            print(f"{n} entries ...", file=sys.stderr, flush=True)
            rows.append(bench_size(n, work, args.runs, not args.skip_mkdocs, n == incr))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"median of {args.runs} run(s)\n")
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": args.runs, "rows": rows}, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
