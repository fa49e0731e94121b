"""Run CPU-bound build work in forked processes that die with their parent.

A fork shares the parent's memory copy-on-write (the corpus is not pickled), and a child that
outlived a killed build could keep writing, so each child asks the kernel to kill it when its
parent dies (Linux `PR_SET_PDEATHSIG`). `Job` runs one piece of work in a child, `Shared` a
list's items in a child and in this process, taken one by one from a shared counter.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[str, int, int], None]


class ChildFailed(RuntimeError):
    """The work in a forked process raised or the process died."""


def die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - other systems: best effort
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class Child:
    name: str
    proc: BaseProcess
    reader: Connection
    started: float

    def wait(self) -> tuple[float, object]:
        """Join; raise ChildFailed if the work failed; return (wall seconds, what work returned)."""
        try:
            status, value = self.reader.recv()
        except EOFError:
            status, value = "error", "the process died"
        self.proc.join()
        if status != "ok" or self.proc.exitcode != 0:
            raise ChildFailed(f"{self.name} failed: {value if status != 'ok' else f'exit code {self.proc.exitcode}'}")
        return time.perf_counter() - self.started, value

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


def fork(name: str, work: Callable[[], object], close_fds: tuple[int, ...] = ()) -> Child:
    """Start `work()` in a forked child; `close_fds` are closed in the child first. What `work`
    returns must pickle (it comes back through a pipe)."""
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    parent = os.getpid()

    def run() -> None:
        for fd in close_fds:
            os.close(fd)
        die_with_parent(parent)
        try:
            writer.send(("ok", work()))
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            writer.send(("error", f"{type(exc).__name__}: {exc}"))
            raise SystemExit(1) from None

    # not a daemon: a daemonic process may not fork (the index forks its questions part)
    proc = ctx.Process(target=run, name=f"kb-{name}", daemon=False)
    started = time.perf_counter()
    proc.start()
    writer.close()
    return Child(name, proc, reader, started)


class Job(Generic[R]):
    """`work()` started now in a forked child (when `in_child`), its result taken later with
    `result()`; done in this process instead when the child fails (e.g. was killed). For work
    that a process can hand off while it does other things; `cancel()` when it is not wanted."""

    def __init__(self, name: str, work: Callable[[], R], in_child: bool = True) -> None:
        self.work = work
        self.child = fork(name, work) if in_child and (os.cpu_count() or 1) > 1 else None

    def result(self) -> R:
        child, self.child = self.child, None
        if child is not None:
            try:
                return child.wait()[1]
            except ChildFailed:
                pass
        return self.work()

    def cancel(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.kill()


CHUNK = 64  # results a Shared child sends at a time, once the parent takes items too


class Shared(Generic[T, R]):
    """`[work(x) for x in items]`, started now in a forked child that takes the items one by
    one from a counter in shared memory; `result()`, later, takes what is left in this process
    from the same counter and returns every result in order. For work that can start before
    this process is free to share it (the CLI parses the bank's files while it imports the
    libraries the rest of a build needs; the site's child renders entry pages while this
    process writes the lists), and for work whose items differ in cost or whose processes share
    the cores with others (rendering the bank, counting terms): whoever is free takes the next
    item, so both end together (a child given every other item ended up to a second after
    this process when rendering 5,000 entries: its first writes to shared pages fault).

    Once this process takes items too, the child sends its results in chunks and this process
    reads them between its own items, so little is left to receive when both are done (received
    at the end, the results kept this process busy alone for up to half a second at 5,000
    entries, with the other core idle). Items the child took but did not send (it failed or was
    killed) are done here. `cancel()` when it is not wanted."""

    def __init__(self, name: str, items: list[T], work: Callable[[T], R], min_items: int = 2) -> None:
        self.items = items
        self.work = work
        ctx = multiprocessing.get_context("fork")
        self._next = ctx.Value("q", 0)  # the next item to take, with its lock
        self._joined = ctx.RawValue("b", 0)  # set when this process takes items too
        self.child: Child | None = None
        if len(items) >= min_items and (os.cpu_count() or 1) > 1:
            self._results, sender = ctx.Pipe(duplex=False)
            self.child = fork(name, lambda: self._send(sender))
            sender.close()  # the child holds the only copy: its exit ends the stream

    def _take(self) -> int:
        with self._next.get_lock():
            i = self._next.value
            self._next.value = i + 1
        return i

    def _send(self, sender: Connection) -> None:
        """In the child: take items and send their results as {index: result} chunks."""
        done: dict[int, R] = {}
        while (i := self._take()) < len(self.items):
            done[i] = self.work(self.items[i])
            if len(done) >= CHUNK and self._joined.value:
                sender.send(done)
                done = {}
        sender.send(done)

    def result(self, progress: Progress | None = None, label: str = "") -> list[R]:
        """Every result, in order; `progress(label, n, total)` as the items are taken."""
        total = len(self.items)
        done: dict[int, R] = {}
        child, self.child = self.child, None
        results = self._results if child is not None else None
        self._joined.value = 1
        try:
            while (i := self._take()) < total:
                done[i] = self.work(self.items[i])
                if results is not None and results.poll():
                    try:
                        done |= results.recv()
                    except EOFError:  # the child is gone: what it took and did not send is done below
                        results = None
                if progress and i % 50 == 0:
                    progress(label, i, total)
        except BaseException:  # no child may wait forever on a pipe nobody reads
            if child is not None:
                child.kill()
                self._results.close()
            raise
        if child is not None:
            try:
                while results is not None:
                    done |= results.recv()
            except EOFError:
                pass
            self._results.close()
            try:
                child.wait()
            except ChildFailed:
                pass
        out = [done[i] if i in done else self.work(x) for i, x in enumerate(self.items)]
        if progress:
            progress(label, total, total)
        return out

    def cancel(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.kill()
            self._results.close()
