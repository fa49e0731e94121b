"""`kb build --watch`: rebuild the bank on every change, in one warm process.

A fresh `kb build` spends about a second importing its libraries and re-reading its caches
before any work. A watching process keeps them in memory (the parsed entries, the site's state,
the analyzer), so a rebuild after one edit costs only what the edit touches. Each rebuild is an
ordinary build: validated as a whole, swapped in atomically, the previous build kept serving
when the bank has errors. Changes are found by polling (mtime and size of every file a build
reads, every 0.3 s or longer on a big bank): no dependency, and it works on every file system,
including network mounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kb.analysis import fold
from kb.build import BuildError, BuildResult, build, collect_frozen
from kb.drafts import entry_files
from kb.indexing import remember_docs
from kb.loading import CATEGORIES_FILE

POLL_SECONDS = 0.3


def snapshot(entries: Path) -> dict[str, tuple[int, int]]:
    """(mtime in ns, size) of every file a build reads; empty when the folder is missing."""
    if not entries.is_dir():
        return {}
    out = {}
    for path in [*entry_files(entries), entries / CATEGORIES_FILE]:
        try:
            st = path.stat()
        except OSError:  # deleted between listing and stat: the next poll sees it gone
            continue
        out[str(path)] = (st.st_mtime_ns, st.st_size)
    return out


def watch(entries: Path, out: Path, emitters: list, report: Callable[[BuildResult | BuildError], None], *,
          strict: bool = False, settings_key: str = "", progress: Callable[[str, int, int], None] | None = None,
          log: Callable[[str], None] | None = None, stop: Callable[[], bool] = lambda: False,
          interval: float = POLL_SECONDS) -> None:
    """Build now and after every change until `stop()` is true; `report` gets each build's
    result, or the BuildError of a build that was refused (the previous one keeps serving)."""
    cache = None
    seen: dict[str, tuple[int, int]] | None = None
    while not stop():
        t = time.perf_counter()
        now = snapshot(entries)
        # polling a big bank costs: keep it under ~20% of a core while idle
        pause = max(interval, 4 * (time.perf_counter() - t))
        if now != seen:
            try:
                result = build(entries, out, emitters, strict=strict, settings_key=settings_key, progress=progress,
                               log=log, cache=cache)
                cache = result.corpus.cache
                seen = now  # taken before building: an edit made during the build triggers another
                report(result)
                fold(e.source for e in result.corpus.entries.values())  # for the next rename, while idle
                remember_docs(result.corpus)  # for the next index, while idle
                collect_frozen()  # the garbage of the previous builds, while idle
            except BuildError as exc:
                if exc.cache is not None:  # the bank has errors: wait for the next edit
                    cache, seen = exc.cache, now
                report(exc)  # otherwise (another build held the lock) try again at the next poll
            progress = None  # the bar is for the first, full build
        time.sleep(pause)
