"""The daily bot's ledger: what was posted, per channel and date, so a re-run never posts twice.

A small JSON file (default `.kb-daily-ledger.json` in the working folder, not in the build
folder, which every `kb build` replaces):

    {"version": 1,
     "posts": {"slack/3f9c0a1b2c3d/all": {"2026-12-01": {"question": "kv-cache-why",
                                                          "posted_at": "2026-12-01T00:05:09Z"}}}}

A key is platform / destination fingerprint (a one-way hash of the webhook URL or bot token
and chat, so two groups on one platform are two channels, and no secret is stored) / stream
(filters and salt). A record is written right after its channel accepted the message, so a
run that dies half-way keeps what it did. While a run uses the ledger it holds an exclusive
`flock` on `<ledger>.lock`: two runs at once take turns instead of both posting. Records
older than `KEEP_DAYS` are dropped. A ledger that cannot be read stops the run (posting
without it could post twice).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

DEFAULT_PATH = Path(".kb-daily-ledger.json")
KEEP_DAYS = 400


class LedgerError(Exception):
    """The ledger file exists but cannot be used."""


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.posts: dict[str, dict[str, dict]] = {}

    def load(self) -> None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.posts = {}
            return
        except OSError as exc:
            raise LedgerError(f"cannot read the ledger {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(raw) if raw.strip() else {"posts": {}}
        except ValueError as exc:
            raise LedgerError(f"the ledger {self.path} is not valid JSON ({exc}); fix or move it "
                              "(without it, today's posts could be sent twice)") from None
        posts = data.get("posts") if isinstance(data, dict) else None
        if not isinstance(posts, dict) or not all(isinstance(v, dict) for v in posts.values()):
            raise LedgerError(f"the ledger {self.path} does not look like a kb daily ledger")
        self.posts = posts

    def get(self, key: str, day: date) -> dict | None:
        """The record of what `key` posted on `day`, if anything."""
        rec = self.posts.get(key, {}).get(day.isoformat())
        return rec if isinstance(rec, dict) else None

    def record(self, key: str, day: date, question_id: str) -> None:
        """Remember a post and write the ledger at once (atomically: a temp file renamed over it)."""
        stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        self.posts.setdefault(key, {})[day.isoformat()] = {"question": question_id, "posted_at": stamp}
        oldest = (day - timedelta(days=KEEP_DAYS)).isoformat()
        for days in self.posts.values():
            for d in [d for d in days if d < oldest]:
                del days[d]
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = {"version": 1, "posts": {k: dict(sorted(v.items())) for k, v in sorted(self.posts.items())}}
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


@contextmanager
def open_ledger(path: Path) -> Iterator[Ledger]:
    """The ledger at `path`, loaded, with an exclusive lock held until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ledger = Ledger(path)
        ledger.load()
        yield ledger
    finally:
        os.close(fd)
