"""Settings and the read-only handle on the served build, as FastAPI dependencies.

`build` is a symlink that `kb build` swaps atomically. Each request checks where it points
(one readlink) and, when a new build was swapped in, opens it; requests already running keep
the build they started with, which is closed when the last of them finishes. So a rebuild is
picked up without a restart and without failing a request in flight, and every response
comes wholly from one build (its ETag is that build's id).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Response

from api.errors import ApiError
from kb.bank import Bank

log = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class Settings:
    build: Path  # the build folder (symlink to the current version)
    search_pool: int = 2  # Whoosh searchers per process (they are not thread-safe)
    cache_seconds: int = 60


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        self.etag = etag


class BankHolder:
    """The current Bank of a process, reopened when the build symlink moves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._bank: Bank | None = None
        self._target: str | None = None
        self._users: dict[int, int] = {}
        self._retired: list[Bank] = []
        self._failed: tuple[str, float] | None = None  # a build that could not be opened, and when

    def _where(self) -> str:
        try:
            return os.path.realpath(self.settings.build)
        except OSError:
            return ""

    def acquire(self) -> Bank:
        with self._lock:
            # read the symlink under the lock: a request that read it before a swap must not
            # switch the process back to the older build after another request moved it on
            target = self._where()
            retry = self._failed is None or self._failed[0] != target or time.monotonic() - self._failed[1] > 1.0
            if (self._bank is None or target != self._target) and (retry or self._bank is None):
                try:
                    fresh = Bank(Path(target), self.settings.search_pool)
                    self._failed = None
                except Exception as exc:  # noqa: BLE001 - a half-pruned or missing build: keep the old one
                    # retried at most once a second, so a broken build does not cost every request
                    self._failed = (target, time.monotonic())
                    log.warning("cannot open the build at %s (%s: %s); %s", target, type(exc).__name__, exc,
                                "still serving the previous one" if self._bank is not None else "nothing to serve")
                    if self._bank is None:
                        raise ApiError(503, "no_build", f"no finished build at {self.settings.build}; run `kb build`") from None
                    fresh = None
                if fresh is not None:
                    if self._bank is not None:
                        self._retired.append(self._bank)
                    self._bank, self._target = fresh, target
            bank = self._bank
            self._users[id(bank)] = self._users.get(id(bank), 0) + 1
            return bank

    def release(self, bank: Bank) -> None:
        with self._lock:
            self._users[id(bank)] -= 1
            for old in [b for b in self._retired if self._users.get(id(b), 0) == 0]:
                self._retired.remove(old)
                self._users.pop(id(old), None)
                old.close()

    def close(self) -> None:
        with self._lock:
            for bank in [*self._retired, self._bank]:
                if bank is not None:
                    bank.close()
            self._retired, self._bank = [], None


def get_bank(request: Request, response: Response) -> Iterator[Bank]:
    """The build this request reads; sets ETag/Cache-Control and answers 304 when unchanged."""
    holder: BankHolder = request.app.state.holder
    bank = holder.acquire()
    try:
        etag = f'W/"{bank.build_id}"'
        if etag in request.headers.get("if-none-match", ""):
            raise NotModified(etag)
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = f"public, max-age={holder.settings.cache_seconds}"
        yield bank
    finally:
        holder.release(bank)


BankDep = Annotated[Bank, Depends(get_bank)]
