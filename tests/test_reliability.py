"""Reliability of a real `kb serve` (uvicorn, a subprocess on a free loopback port) under load:
rebuilds while serving, a build killed mid-way, a worker killed with SIGKILL, and memory over a
soak. Every load loop is bounded in requests and seconds.

How "wholly from one build" is checked: every version of the test bank carries a marker
(`mk<k>x`) in one entry's summary, body and answer; after `kb build` of version k the test reads
the build id it published. A response is whole when its ETag (W/"<build id>") names the build
of every marker in its body (or, for /healthz, the build_id in its body).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import Server  # noqa: E402
from kb.build import IndexEmitter, StoreEmitter, build, build_lock, versions_dir  # noqa: E402
from site_builder import SiteEmitter  # noqa: E402

CATEGORIES = "foundations: 基础概念\nrag: 检索增强\ninference: 推理与部署\n"
MARKER = re.compile(r"mk(\d+)x")
FILLERS = 30


def probe_entry(version: int) -> str:
    return (f"---\ntitle: Probe 探针\naliases: [Probe]\ncategory: rag\ntags: [探针]\ndifficulty: 2\nadded: 2026-01-01\n"
            f"summary: 探针条目 mk{version}x\nsources:\n  - \"Some paper, 2020\"\nquestions:\n  - id: probe-q1\n"
            f"    q: 探针是什么？\n    difficulty: 1\n    a: |\n      答案 mk{version}x\n---\n"
            f"## 正文\n\n探针的正文 mk{version}x，参见 [[f0]]。\n")


def filler_entry(i: int) -> str:
    words = "检索 向量 注意力 显存 推理 训练 量化 分词 ".split()
    body = "".join(f"{words[(i + j) % len(words)]}相关的说明，" for j in range(60))
    return (f"---\ntitle: 填充条目 {i}\naliases: [Filler {i}]\ncategory: {['rag', 'inference', 'foundations'][i % 3]}\n"
            f"tags: [{words[i % len(words)]}]\ndifficulty: {1 + i % 3}\nadded: 2026-01-01\nsummary: 第 {i} 个填充条目。\n"
            f"sources:\n  - \"Some paper, 2020\"\nquestions:\n  - id: f{i}-q1\n    q: 填充问题 {i}？\n    difficulty: 1\n"
            f"    a: |\n      填充答案 {i}。\n---\n## 说明\n\n{body}\n\n见 [[f{(i + 1) % FILLERS}]] 与 [[probe]]。\n")


def write_version(bank: Path, version: int) -> None:
    bank.mkdir(parents=True, exist_ok=True)
    (bank / "_categories.yml").write_text(CATEGORIES, encoding="utf-8")
    for i in range(FILLERS):
        path = bank / f"f{i}.md"
        if not path.exists():
            path.write_text(filler_entry(i), encoding="utf-8")
    (bank / "probe.md").write_text(probe_entry(version), encoding="utf-8")


def kb_build_cmd(bank: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "kb.cli", "build", "--entries", str(bank), "--out", str(out), "--quiet"]


def build_id(out: Path) -> str:
    return (out / "BUILD_ID").read_text().strip()


# -- a bounded load loop ------------------------------------------------------------------------------


@dataclass
class Outcome:
    t: float
    path: str
    status: int | None  # None: the request failed (connection error, timeout)
    etag_build: str | None = None
    markers: frozenset[str] = frozenset()
    body_build: str | None = None
    error: str = ""


@dataclass
class Load:
    """`threads` clients (keep-alive) cycling through `paths` until stopped or bounded."""

    base: str
    paths: list[str]
    threads: int = 4
    max_requests: int = 20_000
    max_seconds: float = 120
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]

    def __enter__(self) -> Load:
        self._t0 = time.monotonic()
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=60)
        return self.outcomes

    def count(self) -> int:
        return len(self.outcomes)

    def _run(self, n: int) -> None:
        i = n
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set() and len(self.outcomes) < self.max_requests and \
                    time.monotonic() - self._t0 < self.max_seconds:
                path = self.paths[i % len(self.paths)]
                i += self.threads
                try:
                    r = client.get(path)
                    etag = r.headers.get("etag", "")
                    m = re.fullmatch(r'W/"([0-9a-f]+)"', etag)
                    body_build = r.json().get("build_id") if path == "/healthz" and r.status_code == 200 else None
                    out = Outcome(time.monotonic(), path, r.status_code, m.group(1) if m else None,
                                  frozenset(MARKER.findall(r.text)), body_build)
                except httpx.HTTPError as exc:
                    out = Outcome(time.monotonic(), path, None, error=f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.outcomes.append(out)


WHOLE_PATHS = ["/healthz", "/entries/probe", "/questions/probe-q1", "/search?q=%E6%8E%A2%E9%92%88",  # 探针
               "/site/probe.html", "/entries/f3", "/questions/random?seed=3"]


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status is None or o.status >= 400]


def mixed_from_one_build(outcomes: list[Outcome], build_of_marker: dict[str, str]) -> list[str]:
    """Every way a response is not wholly from one build, described."""
    bad = []
    for o in outcomes:
        if o.status != 200:
            continue
        if o.etag_build is None:
            bad.append(f"{o.path}: no build ETag")
            continue
        if o.body_build is not None and o.body_build != o.etag_build:
            bad.append(f"{o.path}: body says {o.body_build}, ETag says {o.etag_build}")
        if len(o.markers) > 1:
            bad.append(f"{o.path}: markers of several versions {sorted(o.markers)}")
        for k in o.markers:
            if build_of_marker.get(k) != o.etag_build:
                bad.append(f"{o.path}: marker mk{k}x belongs to {build_of_marker.get(k)}, ETag says {o.etag_build}")
    return bad


# -- one server over a bank that changes --------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    bank, out = root / "entries", root / "build"
    write_version(bank, 0)
    build(bank, out, [StoreEmitter(), IndexEmitter(), SiteEmitter()])  # before any thread exists (it forks)
    state = {"bank": bank, "out": out, "version": 0, "build_of": {"0": build_id(out)}}
    state["builder"] = Builder(bank, out)
    with Server(out, workers=1, log=root / "serve.log") as server:
        server.warm(4)
        state["server"] = server
        yield state
    state["builder"].close()


BUILDER = """
import sys
from pathlib import Path
from kb.cli import run_build
entries, out = Path(sys.argv[1]), Path(sys.argv[2])
for line in sys.stdin:
    try:
        run_build(entries, out, quiet=True)
        print("ok", flush=True)
    except BaseException as exc:  # typer.Exit on a failed build
        print(f"failed {exc!r}", flush=True)
"""


class Builder:
    """A process that runs `kb build`'s own code (kb.cli.run_build) each time it is asked, so the
    three rebuilds pay Python's start-up and imports once. It forks (the index is written in a
    child), which is why the builds do not run inside this multi-threaded test process."""

    def __init__(self, bank: Path, out: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(bank), str(out)], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def build(self) -> None:
        self.proc.stdin.write("build\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"kb build failed: {answer} {self.proc.stderr.read() if not answer else ''}"

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def publish(state: dict, version: int) -> None:
    """Publish version `version` of the bank with a real build (swap, prune) beside the server."""
    write_version(state["bank"], version)
    state["builder"].build()
    state["version"] = version
    state["build_of"][str(version)] = build_id(state["out"])


def test_rebuild_while_serving_fails_nothing_and_never_mixes_builds(served):
    server: Server = served["server"]
    before = served["version"]
    with Load(server.base, WHOLE_PATHS, threads=4, max_requests=6_000, max_seconds=150) as load:
        for k in range(before + 1, before + 4):  # three rebuilds of a changed bank
            publish(served, k)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(  # until the load has seen the new build
                    o.etag_build == served["build_of"][str(k)] for o in load.outcomes[-50:]):
                time.sleep(0.05)
        time.sleep(0.3)
    outcomes = load.outcomes
    assert outcomes and failures(outcomes) == [], Counter((o.path, o.status, o.error) for o in failures(outcomes))
    assert mixed_from_one_build(outcomes, served["build_of"]) == []
    seen = {o.etag_build for o in outcomes}
    published = {served["build_of"][str(k)] for k in range(before + 1, before + 4)}
    assert published <= seen, "the server did not pick up every rebuild"
    per_path = Counter(o.path for o in outcomes)
    assert set(per_path) == set(WHOLE_PATHS)
    print(f"\nrebuild x3 under load: {len(outcomes)} requests, 0 failed, builds seen {len(seen)}")


def test_build_killed_midway_leaves_the_served_build_whole(served):
    server: Server = served["server"]
    out: Path = served["out"]
    old_build, old_marker = build_id(out), str(served["version"])
    old_target = os.path.realpath(out)
    write_version(served["bank"], served["version"] + 100)
    builder: Builder = served["builder"]
    with Load(server.base, WHOLE_PATHS, threads=3, max_requests=4_000, max_seconds=60) as load:
        builder.proc.stdin.write("build\n")  # `kb build`'s code, in its own process...
        builder.proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not list(versions_dir(out).glob("staging-*")) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(builder.proc.pid, signal.SIGKILL)  # ...killed once it has started writing the new build
        builder.proc.wait(timeout=30)
        time.sleep(1.0)  # keep serving after the kill
    served["builder"] = Builder(served["bank"], out)  # for any later rebuild
    assert builder.proc.returncode == -signal.SIGKILL
    assert os.path.realpath(out) == old_target and build_id(out) == old_build, "the killed build was swapped in"
    outcomes = load.outcomes
    assert outcomes and failures(outcomes) == []
    assert {o.etag_build for o in outcomes} == {old_build}
    assert mixed_from_one_build(outcomes, served["build_of"]) == []
    assert {m for o in outcomes for m in o.markers} == {old_marker}
    assert httpx.get(server.base + "/healthz").json()["build_id"] == old_build
    deadline = time.monotonic() + 10
    while True:  # the index writer, a forked child, dies with its parent; then the lock is free
        try:
            with build_lock(out):
                break
        except Exception:  # noqa: BLE001 - BuildError while the child is still exiting
            assert time.monotonic() < deadline, "the killed build's lock was never released"
            time.sleep(0.1)
    write_version(served["bank"], served["version"])  # back to the served version for the next tests
    print(f"\nbuild killed mid-way: {len(outcomes)} requests during and after, all from build {old_build}")


def swap_to(out: Path, target: Path) -> None:
    tmp = out.parent / f".{out.name}.test-swap"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, out.parent))
    os.replace(tmp, out)


def test_a_broken_build_swapped_in_is_not_served(served):
    """A build the server cannot open (a truncated store; an index of another schema, as an older
    or newer kb writes) is refused: the server keeps serving the previous build whole."""
    from whoosh import index as windex
    from whoosh.fields import ID, Schema

    server: Server = served["server"]
    out: Path = served["out"]
    good = Path(os.path.realpath(out))
    old_build = build_id(out)
    broken = []
    for kind in ("truncated-store", "other-schema"):
        bad = out.parent / f"broken-{kind}"
        shutil.copytree(good, bad)
        if kind == "truncated-store":
            (bad / "kb.sqlite").write_bytes(b"")
        else:
            shutil.rmtree(bad / "index")
            (bad / "index").mkdir()
            windex.create_in(str(bad / "index"), Schema(kind=ID(stored=True), key=ID(stored=True))).close()
            shutil.copy(good / "index" / "docs.json", bad / "index" / "docs.json")
        broken.append(bad)
    try:
        with Load(server.base, WHOLE_PATHS, threads=3, max_requests=3_000, max_seconds=30) as load:
            for bad in broken:
                swap_to(out, bad)
                time.sleep(1.5)
            swap_to(out, good)
            time.sleep(0.3)
    finally:
        swap_to(out, good)
    outcomes = load.outcomes
    assert outcomes and failures(outcomes) == [], Counter((o.path, o.status, o.error) for o in failures(outcomes))
    assert {o.etag_build for o in outcomes} == {old_build}
    log = (out.parent / "serve.log").read_text(encoding="utf-8", errors="replace")
    for bad in broken:  # refused, and said so in the log
        assert f"cannot open the build at {bad}" in log, bad
    print(f"\nbroken builds swapped in: {len(outcomes)} requests, all from build {old_build}")


SOAK_PATHS = [
    "/healthz", "/search?q=%E6%B3%A8%E6%84%8F%E5%8A%9B", "/search?q=Filler", "/search?q=a%3Ab%20OR%20(c",
    "/entries/f{f}", "/entries/nope{n}", "/questions/random", "/questions/daily?date=2027-{m:02d}-{d:02d}",
    "/questions/daily?salt=s{n}", "/search?q=w{n}%20%E6%A3%80%E7%B4%A2&tag=t{n}", "/search?q=", "/site/f{f}.html",
    "/site/index.html", "/entries?limit=20&offset={f}", "/graph", "/path?from=f{f}&to=probe", "/tags",
]


def soak_paths(count: int, offset: int) -> list[str]:
    """`count` mixed paths; the {n} parts are unique per request, so caches keyed on input would grow."""
    out = []
    for i in range(offset, offset + count):
        p = SOAK_PATHS[i % len(SOAK_PATHS)]
        out.append(p.format(n=i, f=i % FILLERS, m=1 + i % 12, d=1 + i % 28))
    return out


def run_load(base: str, paths: list[str], seconds: float, threads: int = 4) -> tuple[list[Outcome], float]:
    """Request every path once (`threads` clients); return the outcomes and the time taken."""
    t0 = time.monotonic()
    load = Load(base, paths, threads=threads, max_requests=len(paths), max_seconds=seconds)
    with load:
        while load.count() < len(paths) and time.monotonic() - t0 < seconds:
            time.sleep(0.05)
    return load.outcomes, time.monotonic() - t0


def test_memory_stays_flat_over_a_soak(served):
    server: Server = served["server"]
    warm, soak = 400, 2_000
    outcomes, _ = run_load(server.base, soak_paths(warm, 0), 60, threads=16)  # threads, connections, caches
    assert not [o for o in outcomes if o.status is None or o.status >= 500]
    before = server.rss_mb()
    # 16 concurrent clients: more threads in the server than any small per-thread pool holds
    outcomes, took = run_load(server.base, soak_paths(soak, warm), 90, threads=16)
    after = server.rss_mb()
    assert len(outcomes) >= soak * 0.9, f"only {len(outcomes)} requests in 90 s"
    assert not [o for o in outcomes if o.status is None or o.status >= 500]
    growth = after - before
    print(f"\nsoak: {len(outcomes)} requests in {took:.1f}s, RSS {before:.1f} -> {after:.1f} MiB "
          f"({growth:+.1f} MiB, {growth * 1024 * 1024 / len(outcomes):.0f} B/request)")
    assert growth < 6, f"RSS grew {growth:.1f} MiB over {len(outcomes)} requests after warm-up"


# -- a worker killed under load -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workers")
    write_version(root / "entries", 0)
    build(root / "entries", root / "build", [StoreEmitter(), IndexEmitter(), SiteEmitter()])
    return root / "build"


def wait_for_new_worker(server: Server, old: set[int], timeout: float = 30) -> tuple[int, float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        pids = set(server.worker_pids())
        fresh = pids - old
        if fresh and len(pids) >= server.workers:
            return fresh.pop(), time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"no replacement worker within {timeout}s (workers now {server.worker_pids()})")


def test_killed_workers_are_replaced_and_serving_resumes(small_build, tmp_path):
    with Server(small_build, workers=2, log=tmp_path / "serve.log") as server:
        server.warm()
        originals = server.worker_pids()
        assert len(originals) == 2
        kills: list[tuple[float, float]] = []  # (kill time, replacement delay)
        with Load(server.base, WHOLE_PATHS, threads=4, max_requests=20_000, max_seconds=120) as load:
            time.sleep(0.5)
            known = set(originals)
            for victim in originals:  # kill both original workers, the second once the first is replaced
                t_kill = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                new_pid, delay = wait_for_new_worker(server, known)
                known |= {new_pid}
                kills.append((t_kill, delay))
            recovered = time.monotonic()
            deadline = recovered + 15  # only replacement workers are left now: 40 more requests
            while sum(o.t > recovered for o in load.outcomes) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert server.proc.poll() is None, "the supervisor died"
        assert not set(originals) & set(server.worker_pids())
        outcomes = load.outcomes
        after = [o for o in outcomes if o.t > recovered]
        assert len(after) >= 40 and failures(after) == [], "requests failed after the workers were replaced"
        for t_kill, _ in kills:  # service resumes within a few seconds of each kill
            first_ok = min((o.t for o in outcomes if o.t > t_kill and o.status == 200), default=None)
            assert first_ok is not None and first_ok - t_kill < 5
        failed = failures(outcomes)
        assert all(o.status is None for o in failed), "a request got an error status, not a dropped connection"
        assert len(failed) <= 4 * len(kills), f"{len(failed)} failed requests for {len(kills)} kills"
        print(f"\nkill -9 x{len(kills)} under load: {len(outcomes)} requests, {len(failed)} dropped "
              f"(in flight on the killed workers), replacements after "
              f"{', '.join(f'{d:.1f}s' for _, d in kills)}")
