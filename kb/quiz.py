"""Question selection shared by the daily bot, the API and the static site: random and daily.

Daily selection, precisely (no stored state; a pure function of the bank and the date):

* A *stream* is the set of questions passing the filters (tag, category, difficulty) plus a
  salt. Its key is `stream_key(...)`, e.g. ``"all"`` or ``"category=rag;difficulty=2"``.
* A question's *start date* is its own `added`, else its entry's `added`, else `EPOCH`.
* Cycle 0 starts on the first day on or after `EPOCH` on which the stream has a member:
  ``max(EPOCH, earliest start date)``. Its *members* are frozen at that day: the stream's
  questions whose start date is on or before it. A cycle lasts one day per member, and the
  next cycle starts the day after it ends, with the members of *its* start day. Once a stream
  has members it always has, so cycles follow one another without gaps.
* Within cycle `c` the members are ordered by ``sha256(json.dumps([salt, stream, c, id]))``
  (ties, which do not happen, by id); day `k` of the cycle asks the `k`-th of that order.
  One exception keeps a question from being asked two days running across a cycle boundary:
  when a cycle (of two or more) would begin with the question that ended the previous cycle,
  its first two questions swap places.

So every question is asked exactly once per cycle; a question added during a cycle waits for
the next one, and adding questions (with a start date after day D) never changes day D or any
day before it. Days before the stream's first cycle, and all dates before `EPOCH`, have no
question: `daily` returns None.

Removal: the bank is all there is, so a removed (or renamed) question is simply no member of
any cycle any more. Every cycle it belonged to becomes one day shorter: in the first such
cycle the days before its slot are unchanged, its slot is taken by the question that came
after it, every later day of that cycle moves one day earlier, and every later cycle starts
one day earlier (and, being a different cycle on a different day, is a different shuffle).
Nothing crashes and no question is asked twice within a cycle, but the schedule from the
removed question's first slot on is a different one. That is why question ids must be stable:
`kb check` warns when one disappears (see `kb.question_ids`), and the daily bot takes
"yesterday's question" from its ledger of what it really posted, not from recomputation.

Speed: a stream is walked in O(number of distinct start dates), not day by day, and each
cycle's order is cached; `schedule()` computes many consecutive days at once for the site.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import NamedTuple

from kb.model import Corpus

EPOCH = date(2026, 1, 1)


class QuizItem(NamedTuple):
    """What selection needs to know of a question (`added`: the question's own, else its entry's).
    A NamedTuple: a bank builds thousands of these per build, ~10x faster than a frozen dataclass."""

    id: str
    entry_id: str
    added: date | None
    tags: tuple[str, ...]
    category: str
    difficulty: int


def items_from_corpus(corpus: Corpus) -> list[QuizItem]:
    """Every question of the bank as a QuizItem, in a stable order (by question id)."""
    items = [
        QuizItem(q.id, e.id, q.added or e.added, tuple(e.tags), e.category, q.difficulty)
        for e in corpus.entries.values()
        for q in e.questions
    ]
    return sorted(items, key=lambda i: i.id)


def _matches(item: QuizItem, tag: str | None, category: str | None, difficulty: int | None) -> bool:
    return ((tag is None or tag in item.tags) and (category is None or item.category == category)
            and (difficulty is None or item.difficulty == difficulty))


def filter_items(items: Sequence[QuizItem], *, tag: str | None = None, category: str | None = None,
                 difficulty: int | None = None) -> list[QuizItem]:
    """The items passing every given filter (None means no filter), in the order given."""
    return [i for i in items if _matches(i, tag, category, difficulty)]


def stream_key(*, tag: str | None = None, category: str | None = None, difficulty: int | None = None) -> str:
    """The canonical name of a filtered stream (the salt is hashed separately)."""
    parts = [f"{k}={v}" for k, v in (("category", category), ("difficulty", difficulty), ("tag", tag)) if v is not None]
    return ";".join(parts) or "all"


def start_date(item: QuizItem) -> date:
    """The first day a question may be a member of a cycle: `added`, or EPOCH when unset."""
    return item.added or EPOCH


def order_digest(salt: str, stream: str, cycle: int, qid: str) -> bytes:
    """The documented sort key of a question within a cycle (the definition; `_order_keys` is its fast form)."""
    return hashlib.sha256(json.dumps([salt, stream, cycle, qid], ensure_ascii=False).encode()).digest()


def _order_keys(salt: str, stream: str, cycle: int) -> Callable[[QuizItem], tuple[bytes, str]]:
    """`order_digest` for many ids at once: the shared JSON prefix is hashed once, then copied."""
    head = hashlib.sha256((json.dumps([salt, stream, cycle], ensure_ascii=False)[:-1] + ", ").encode())

    def key(item: QuizItem) -> tuple[bytes, str]:
        h = head.copy()
        h.update((encode_basestring(item.id) + "]").encode())
        return h.digest(), item.id

    return key


@dataclass(frozen=True)
class Slot:
    """Where a day falls in a stream: cycle number, its first day, its length and the day's index;
    and the first cycle of its run (the cycles of this length, between two additions)."""

    cycle: int
    start: date
    length: int
    index: int
    run_cycle: int
    run_start: date


class Stream:
    """One filtered, salted stream over a fixed list of items; answers day after day quickly."""

    def __init__(self, items: Sequence[QuizItem], *, salt: str = "", tag: str | None = None,
                 category: str | None = None, difficulty: int | None = None) -> None:
        self.salt = salt
        self.key = stream_key(tag=tag, category=category, difficulty=difficulty)
        by_id: dict[str, QuizItem] = {}
        for item in filter_items(items, tag=tag, category=category, difficulty=difficulty):
            by_id.setdefault(item.id, item)  # a duplicate id (an invalid bank) counts once
        self.members = sorted(by_id.values(), key=lambda i: (start_date(i), i.id))
        self.starts = [max(start_date(i), EPOCH) for i in self.members]
        self.dates = sorted(set(self.starts))
        self._orders: dict[int, list[QuizItem]] = {}
        self._lock = threading.Lock()  # the API asks from many threads at once

    def locate(self, day: date) -> Slot | None:
        """The cycle and position of `day`, or None before the stream's first cycle."""
        if not self.members or day < self.dates[0]:
            return None
        start, cycle = self.dates[0], 0
        while True:
            length = bisect_right(self.starts, start)  # members frozen at the cycle's start
            nxt = bisect_right(self.dates, start)
            if nxt == len(self.dates):  # no more additions: every later cycle has this length
                k = (day - start).days // length
            else:  # cycles of this length start at start + i*length until one starts >= next addition
                k_max = -(-(self.dates[nxt] - start).days // length)
                k = min((day - start).days // length, k_max)
                if k == k_max:
                    start, cycle = start + timedelta(days=k * length), cycle + k
                    continue
            at = start + timedelta(days=k * length)  # this run began at (start, cycle)
            return Slot(cycle + k, at, length, (day - at).days, cycle, start)

    def _shuffled(self, slot: Slot) -> list[QuizItem]:
        return sorted(self.members[: slot.length], key=_order_keys(self.salt, self.key, slot.cycle))

    def _last(self, slot: Slot) -> QuizItem:
        """The last question asked in a cycle. Only a 2-question cycle's last one depends on the
        cycle before (through the swap), and through a whole run of 2-question cycles it never
        changes: each cycle first asks the question that was not asked last. So it is the last
        of the run's first cycle, whose own previous cycle has one question. O(1) for any day
        (walking back cycle by cycle took 30 s for a date in year 9999)."""
        got = self._orders.get(slot.cycle)
        if got is not None:
            return got[-1]
        if slot.length != 2:
            return self._shuffled(slot)[-1]
        first = Slot(slot.run_cycle, slot.run_start, 2, 0, slot.run_cycle, slot.run_start)
        order = self._shuffled(first)
        if first.cycle > 0:
            previous = self.locate(first.start - timedelta(days=1))
            if previous is not None and self._last(previous).id == order[0].id:
                order = [order[1], order[0]]
        return order[-1]

    def order(self, slot: Slot) -> list[QuizItem]:
        """The members of a cycle in the order they are asked."""
        got = self._orders.get(slot.cycle)
        if got is None:
            got = self._shuffled(slot)
            if slot.cycle > 0 and slot.length > 1:
                previous = self.locate(slot.start - timedelta(days=1))
                if previous is not None and self._last(previous).id == got[0].id:
                    got[0], got[1] = got[1], got[0]  # never the same question two days running
            with self._lock:
                if len(self._orders) >= 256:  # forget the oldest computed cycle
                    del self._orders[next(iter(self._orders))]
                self._orders[slot.cycle] = got
        return got

    def pick(self, day: date) -> QuizItem | None:
        slot = self.locate(day)
        return None if slot is None else self.order(slot)[slot.index]


@lru_cache(maxsize=32)
def _stream(items: tuple[QuizItem, ...], salt: str, tag: str | None, category: str | None,
            difficulty: int | None) -> Stream:
    return Stream(items, salt=salt, tag=tag, category=category, difficulty=difficulty)


def daily(items: Sequence[QuizItem], day: date, *, salt: str = "", tag: str | None = None,
          category: str | None = None, difficulty: int | None = None) -> QuizItem | None:
    """The question of `day` in the stream (filters + salt); None when it has none that day.

    Deterministic across processes and machines; see the module docstring for the rules.
    """
    return _stream(tuple(items), salt, tag, category, difficulty).pick(day)


def schedule(items: Sequence[QuizItem], first: date, days: int, *, salt: str = "", tag: str | None = None,
             category: str | None = None, difficulty: int | None = None) -> list[QuizItem | None]:
    """`daily` for `days` consecutive days starting at `first` (what the site precomputes)."""
    stream = _stream(tuple(items), salt, tag, category, difficulty)
    return [stream.pick(first + timedelta(days=i)) for i in range(days)]


def random_pick(items: Sequence[QuizItem], *, tag: str | None = None, category: str | None = None,
                difficulty: int | None = None, seed: int | str | None = None) -> QuizItem | None:
    """A uniformly random question among those passing the filters; None when none does.

    With a seed the pick is reproducible (across processes too: the items are sorted by id
    first, so their order does not matter); without one it uses fresh system randomness.
    """
    pool = sorted(filter_items(items, tag=tag, category=category, difficulty=difficulty), key=lambda i: i.id)
    if not pool:
        return None
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    return pool[rng.randrange(len(pool))]
