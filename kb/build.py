"""`kb build`: load the bank, run the emitters into a staging folder, swap it in atomically.

Layout: `build` is a symlink to `.build-versions/<stamp>-<build id>/`, which holds
`kb.sqlite`, `index/`, `site/`, `BUILD_ID` and `manifest.json`. A build writes a fresh
version folder beside the served one and replaces the symlink with one `rename(2)`, so a
reader sees either the old build or the new one, never a mix. A failed or killed build
leaves only a stale staging folder (removed by the next build); a lock (`flock`, released by
the kernel even on SIGKILL) keeps two builds from writing at once. The previous version is
kept so that requests in flight on it can finish.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial as partial_call
from pathlib import Path
from typing import Protocol

from kb.analysis import bank_tokenizer, primed
from kb.codehash import code_hash
from kb.forking import ChildFailed, Shared, fork
from kb.loading import LoadCache, load_corpus
from kb.model import Corpus, Issue
from kb.indexing import analyzed_texts, update_index, write_index
from kb.store_writer import DB_NAME, update_store, write_store

Progress = Callable[[str, int, int], None]
KEEP_PREVIOUS = 2  # old versions kept for readers still using them
LOAD_CACHE = "load-cache.pickle"  # in the versions folder: parsed files, for the next build


class BuildError(Exception):
    """The build cannot run or the bank has errors; nothing was swapped in."""

    def __init__(self, message: str, issues: list[Issue] | None = None, cache: LoadCache | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []
        self.cache = cache  # what the load parsed, when it got that far (kb.watch reuses it)


@dataclass
class Changes:
    """What differs from the previous build; `full` when nothing can be reused."""

    full: bool
    changed: set[str] = field(default_factory=set)  # added or modified entry ids
    removed: set[str] = field(default_factory=set)
    reason: str = ""
    previous: dict[str, dict] = field(default_factory=dict)  # the previous manifest's entry records


class Emitter(Protocol):
    name: str

    def emit(self, corpus: Corpus, out: Path, progress: Progress | None) -> None: ...


class StoreEmitter:
    name = "store"
    parallel = True  # independent of the site: written in a forked process while the site renders

    def emit(self, corpus: Corpus, out: Path, progress: Progress | None) -> None:
        write_store(corpus, out / DB_NAME)

    def partial_emit(self, corpus: Corpus, out: Path, previous: Path, changes: Changes,
                     progress: Progress | None) -> bool:
        update_store(corpus, out / DB_NAME, previous / DB_NAME, changes.changed, changes.removed)
        return True


class IndexEmitter:
    name = "index"
    parallel = True  # CPU-bound and independent of the other emitters: run it in a forked process
    analyzes = True  # reads the term counts the build computes up front (kb.analysis.primed)

    def emit(self, corpus: Corpus, out: Path, progress: Progress | None) -> None:
        write_index(corpus, out / "index", progress)

    def partial_emit(self, corpus: Corpus, out: Path, previous: Path, changes: Changes,
                     progress: Progress | None) -> bool:
        old_questions = {k: v.get("questions", []) for k, v in changes.previous.items()}
        return update_index(corpus, out / "index", previous / "index", changes.changed, changes.removed, old_questions)


@dataclass
class BuildResult:
    corpus: Corpus
    path: Path  # the version folder now served
    timings: dict[str, float]
    changes: Changes


def versions_dir(out: Path) -> Path:
    return out.parent / f".{out.name}-versions"


def current(out: Path) -> Path | None:
    """The version folder `out` points at, or None when there is no finished build."""
    if out.is_symlink() or out.is_dir():
        resolved = out.resolve()
        if (resolved / "BUILD_ID").is_file():
            return resolved
    return None


@contextmanager
def _without_gc() -> Iterator[None]:
    """A build allocates millions of objects that live until it ends and makes little cyclic
    garbage: the cyclic collector's passes over that growing heap cost ~1 s of a 1,000-entry
    build and free nothing (peak memory is the same without them). Forked children inherit it.
    At the end the survivors are frozen (moved out of the collector's generations) before it is
    enabled again: else its next pass walks all of them (0.2 s at 5,000 entries) on the way to
    the exit. A long-lived process collects them when it has time (`collect_frozen`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def collect_frozen() -> None:
    """Collect what earlier builds of this process left frozen (`kb build --watch`, while idle)."""
    gc.unfreeze()
    gc.collect()


@contextmanager
def build_lock(out: Path) -> Iterator[int]:
    vdir = versions_dir(out)
    vdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(vdir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise BuildError(f"another kb build is writing {out} right now (lock {vdir / 'lock'}); "
                                 "wait for it to finish") from None
            raise
        yield fd
    finally:
        os.close(fd)


def manifest_of(corpus: Corpus) -> dict:
    """What an incremental build compares: per entry the hash of its file and of what it rendered
    to, and the edges, tags and questions it had."""
    return {
        "version": code_hash(),
        "build_id": corpus.build_id,
        "entries": {
            e.id: {"hash": e.content_hash, "out": e.rendered_hash, "links": sorted({l.target for l in e.links}),
                   "tags": e.tags, "category": e.category, "title": e.title, "questions": [q.id for q in e.questions]}
            for e in corpus.entries.values()
        },
    }


def diff(previous: dict | None, corpus: Corpus, settings_key: str) -> Changes:
    """Entries changed since the previous manifest; a full build when code or settings changed."""
    if previous is None:
        return Changes(full=True, reason="no previous build")
    if previous.get("version") != code_hash() or previous.get("settings") != settings_key:
        return Changes(full=True, reason="code version or settings changed")
    old = previous.get("entries", {})
    changed = {i for i, e in corpus.entries.items()
               if old.get(i, {}).get("hash") != e.content_hash or old[i].get("out") != e.rendered_hash}
    removed = set(old) - set(corpus.entries)
    return Changes(full=False, changed=changed, removed=removed, previous=old)


def link_tree(src: Path, dst: Path) -> None:
    """Copy a folder as hard links (instant); replace files with `write_file`, never in place."""
    shutil.copytree(src, dst, copy_function=os.link)


def write_file(path: Path | str, data: str | bytes) -> None:
    """Write a build file as a new file: an existing one is unlinked first, so a hard-linked
    copy of the old build stays intact; missing folders are made. One `open(2)` a file in the
    usual case (a site has thousands: pathlib's checks and a text wrapper cost 3x more)."""
    raw = data.encode() if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(raw)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _swap(out: Path, version: Path) -> None:
    vdir = versions_dir(out)
    if out.exists() and not out.is_symlink():  # a plain folder from elsewhere: keep it, aside
        out.rename(vdir / f"adopted-{time.strftime('%Y%m%dT%H%M%S')}")
    tmp = out.parent / f".{out.name}.swap-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(version, out.parent))
    os.replace(tmp, out)  # atomic: readers see the old target or the new one


def _discard_old(out: Path, keep: Path | None, spare: int) -> list[Path]:
    """Rename the version folders past the `spare` newest besides `keep` to `trash-*` (instant,
    and a half-deleted folder never passes for a version: deleting one changes its mtime), and
    list what is to delete: trash, and staging folders failed or killed builds left (we hold the
    lock)."""
    vdir = versions_dir(out)
    versions = sorted((p for p in vdir.iterdir() if p.is_dir() and not p.name.startswith(("staging-", "trash-"))),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in versions if p != keep][spare:]:
        old.rename(vdir / f"trash-{time.time_ns()}-{old.name}")
    return sorted(p for p in vdir.iterdir() if p.name.startswith(("staging-", "trash-")))


def _remove(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _removing_old(out: Path, lock_fd: int) -> Iterator[Callable[[], None]]:
    """Delete the versions this build will not keep (all but the one served, with KEEP_PREVIOUS
    2) in a child forked now, while the heap is small: deleting a 5,000-entry site takes a
    second, which at the end would be all the build does. Yields a function that waits for it;
    a failed build kills it (the next build deletes what is left)."""
    junk = _discard_old(out, current(out), KEEP_PREVIOUS - 2)
    child = fork("remove old builds", partial_call(_remove, junk), close_fds=(lock_fd,)) if junk else None

    def wait() -> None:
        nonlocal child
        if child is not None:
            try:
                child.wait()
            except ChildFailed:
                pass  # the next build deletes what is left
            child = None

    try:
        yield wait
    except BaseException:
        if child is not None:
            child.kill()
        raise
    wait()


def build(entries: Path, out: Path, emitters: list, *, strict: bool = False, full: bool = False,
          settings_key: str = "", progress: Progress | None = None,
          log: Callable[[str], None] | None = None, cache: LoadCache | None = None,
          prefetched: Shared | None = None) -> BuildResult:
    """Validate the bank and publish a new build at `out`; raise BuildError and change nothing
    when the bank has errors (or warnings, with `strict`) or another build holds the lock.
    `cache`: what an earlier load in this process parsed (see kb.watch); without it the cache
    saved in the build folder is used, and this build's is saved there by a forked child.
    `prefetched`: `kb.drafts.prefetch` of the bank, started before this process was ready."""
    say = log or (lambda _line: None)
    with build_lock(out) as lock_fd, _without_gc(), _removing_old(out, lock_fd) as old_removed:
        t0 = time.perf_counter()
        cache_path = versions_dir(out) / LOAD_CACHE
        save_cache = cache is None  # a caller holding the cache in memory has no use for the file
        if cache is None and not full:
            cache = LoadCache.read(cache_path)
        known = None if full else cache
        if prefetched is not None:  # files that changed since they were parsed are read again
            files = prefetched.result()
            if progress:
                progress("read", len(files), len(files))
            read = LoadCache.of(files)
            if known is None:
                known = read
            else:
                known.drafts.update(read.drafts)
                known.stats.update(read.stats)
        corpus = load_corpus(entries, progress, known)
        timings = {"load": time.perf_counter() - t0}
        failing = corpus.issues if strict else corpus.errors
        if failing:
            raise BuildError(f"{len(corpus.errors)} errors, {len(corpus.warnings)} warnings", corpus.issues,
                             corpus.cache)
        say(f"load: {len(corpus.entries)} entries, {len(corpus.questions)} questions in {timings['load']:.2f}s")
        vdir = versions_dir(out)
        prev = current(out)
        previous_manifest = None
        if prev and (prev / "manifest.json").is_file() and not full:
            previous_manifest = json.loads((prev / "manifest.json").read_text(encoding="utf-8"))
        changes = diff(previous_manifest, corpus, settings_key)
        staging = vdir / f"staging-{os.getpid()}-{time.time_ns()}"
        staging.mkdir(parents=True)

        def run(emitter: Emitter, progress: Progress | None) -> tuple[bool, float]:
            """Emit; (True when the emitter could do a partial emit for these changes, seconds)."""
            t = time.perf_counter()
            partial = getattr(emitter, "partial_emit", None)
            if partial and not changes.full and prev is not None and partial(corpus, staging, prev, changes, progress):
                return True, time.perf_counter() - t
            emitter.emit(corpus, staging, progress)
            return False, time.perf_counter() - t

        saver = None
        children = []
        try:
            # The analyzer (the bank's words loaded into the segmenter) is made once, here, for
            # every process. A full build counts the terms of every text up front, in two
            # processes: the index and the site's search data then share the counts.
            tokenizer = bank_tokenizer(corpus.names)
            tokenizer.segmenter
            # Work that needs no term counts starts first, in forked children: saving what the
            # load parsed (a pickle of the whole corpus, for the next build; losing it only makes
            # that slower) and the store. They fill what the counting leaves of the two cores
            # (its processes share the texts by a counter, so one that runs slower takes fewer).
            # No child may hold the build lock.
            if save_cache:
                saver = fork("load cache", partial_call(corpus.cache.write, cache_path), close_fds=(lock_fd,))
            children = [fork(e.name, partial_call(run, e, None), close_fds=(lock_fd,))
                        for e in emitters if getattr(e, "parallel", False) and not getattr(e, "analyzes", False)]
            with primed(tokenizer, analyzed_texts(corpus) if changes.full else (), progress):
                # The index runs in a forked child too, while the site is written here: on 2 cores
                # they cost little wall time beyond it.
                children += [fork(e.name, partial_call(run, e, None), close_fds=(lock_fd,))
                             for e in emitters if getattr(e, "parallel", False) and getattr(e, "analyzes", False)]
                for emitter in emitters:
                    if getattr(emitter, "parallel", False):
                        continue
                    done, timings[emitter.name] = run(emitter, progress)
                    say(f"{emitter.name}: {'partial' if done else 'full'} in {timings[emitter.name]:.2f}s")
            for child in children:
                try:
                    _, (done, timings[child.name]) = child.wait()
                except ChildFailed as exc:
                    raise BuildError(str(exc)) from None
                say(f"{child.name}: {'partial' if done else 'full'} in {timings[child.name]:.2f}s (in parallel)")
            try:
                if saver is not None:
                    saver.wait()
            except ChildFailed as exc:
                say(f"warning: the load cache was not saved ({exc}); the next build re-reads every file")
        except BaseException:
            for child in [*children, *([saver] if saver else [])]:  # no writer may outlive a failed build
                child.kill()
            raise
        manifest = manifest_of(corpus) | {"settings": settings_key}
        write_file(staging / "manifest.json", json.dumps(manifest, ensure_ascii=False))
        write_file(staging / "BUILD_ID", corpus.build_id + "\n")
        final = vdir / f"{time.strftime('%Y%m%dT%H%M%S')}-{corpus.build_id}-{time.time_ns() % 10**6:06d}"
        staging.rename(final)
        _swap(out, final)
        old_removed()
        _remove(_discard_old(out, final, KEEP_PREVIOUS - 1))
        timings["total"] = time.perf_counter() - t0
        return BuildResult(corpus, final, timings, changes)
