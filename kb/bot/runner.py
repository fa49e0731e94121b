"""`kb daily` without the command line: pick the day's question, render, post, remember.

One run: today's question comes from `kb.quiz.daily` for the stream (filters + salt). For each
target in turn: a channel already posted to today (per the ledger) is skipped; otherwise the
message is rendered in the platform's format, checked against its limits and posted. Yesterday's
question (with `with_answer`) is the one the ledger says this channel really posted yesterday,
when it is still in the bank, else the one `daily` gives for yesterday. A failing channel is
reported and the run goes on with the next one. `stdout` prints the plain-text message and is
never recorded; a dry run renders and checks every payload and touches neither the network
nor the ledger.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import httpx

from kb.bot.ledger import DEFAULT_PATH, Ledger, open_ledger
from kb.bot.messages import PLATFORMS, DailyMessage, LimitError, payload, question_view
from kb.bot.transport import (
    Channel,
    ConfigError,
    RetryPolicy,
    channel_from_env,
    deliver,
    make_client,
    redactor_from_env,
)
from kb.model import Corpus
from kb.quiz import QuizItem, daily, items_from_corpus, stream_key


class NoQuestion(Exception):
    """The stream has no question on that day (filters match nothing, or nothing is added yet)."""


@dataclass(frozen=True)
class DailyOptions:
    day: date
    targets: Sequence[str] = ("stdout",)
    tag: str | None = None
    category: str | None = None
    difficulty: int | None = None
    salt: str = ""
    with_answer: bool = False
    dry_run: bool = False
    base_url: str = ""
    ledger: Path = DEFAULT_PATH

    @property
    def stream(self) -> str:
        key = stream_key(tag=self.tag, category=self.category, difficulty=self.difficulty)
        return key + (f";salt={self.salt}" if self.salt else "")


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    status: Literal["printed", "posted", "skipped", "dry-run", "failed"]
    question: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def line(self) -> str:
        text = f"{self.channel}: {self.status}"
        if self.question:
            text += f" {self.question}"
        return f"{text} ({self.detail})" if self.detail else text


def parse_targets(values: Sequence[str]) -> list[str]:
    """`--to` values, repeatable or comma-separated, deduplicated in order; ValueError on unknowns."""
    out: list[str] = []
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if not name:
                continue
            if name not in PLATFORMS:
                raise ValueError(f"unknown target '{name}'; choose from {', '.join(PLATFORMS)}")
            if name not in out:
                out.append(name)
    return out or ["stdout"]


def run_daily(corpus: Corpus, opts: DailyOptions, *, env: Mapping[str, str] | None = None,
              out: Callable[[str], None] | None = None, log: Callable[[str], None] | None = None,
              client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep) -> list[ChannelResult]:
    """Post (or print, or dry-run) the day's message to every target; one result per target.

    `out` gets messages and payloads (stdout), `log` one status line per target (stderr); both
    only ever see redacted text. Raises NoQuestion when the stream has no question that day,
    ConfigError for a bad retry setting and LedgerError for an unreadable ledger; a channel's
    own problems are results, not exceptions.
    """
    run = _Run(corpus, opts, os.environ if env is None else env, sleep)
    emit = out or (lambda text: print(text, flush=True))
    note = log or (lambda text: print(text, file=sys.stderr, flush=True))
    today = run.pick(opts.day)
    if today is None:
        raise NoQuestion(f"no question for {opts.day} in stream '{opts.stream}': no question matches the filters, "
                         "or none of them is added (`added:`) on or before that day")
    policy = RetryPolicy.from_env(run.env)
    network = any(t != "stdout" for t in opts.targets)
    results = []
    with ExitStack() as stack:
        ledger = None
        if network and opts.dry_run:
            ledger = Ledger(opts.ledger)
            ledger.load()  # read only, for yesterday's question; a broken ledger fails the dry run too
        elif network:
            ledger = stack.enter_context(open_ledger(opts.ledger))
        http = None
        if network and not opts.dry_run:
            http = client if client is not None else stack.enter_context(make_client(policy))
        for target in opts.targets:
            if target == "stdout":
                emit(run.redact(str(payload("stdout", run.message(today, None, None)).body)))
                result = ChannelResult(target, "dry-run" if opts.dry_run else "printed", today.id)
            else:
                result = run.post(target, today, ledger, http, policy, emit)
            results.append(result)
            note(run.redact(result.line()))
    return results


class _Run:
    """What one run shares across its channels."""

    def __init__(self, corpus: Corpus, opts: DailyOptions, env: Mapping[str, str],
                 sleep: Callable[[float], None]) -> None:
        self.corpus, self.opts, self.env, self.sleep = corpus, opts, env, sleep
        self.items = items_from_corpus(corpus)
        self.redact = redactor_from_env(env)

    def pick(self, day: date) -> QuizItem | None:
        o = self.opts
        return daily(self.items, day, salt=o.salt, tag=o.tag, category=o.category, difficulty=o.difficulty)

    def yesterday_id(self, ledger: Ledger | None, key: str | None) -> str | None:
        """What this channel posted yesterday (per the ledger, if still in the bank), else yesterday's pick."""
        if not self.opts.with_answer:
            return None
        yesterday = self.opts.day - timedelta(days=1)
        if ledger is not None and key is not None and (rec := ledger.get(key, yesterday)):
            if rec.get("question") in self.corpus.questions:
                return rec["question"]
        item = self.pick(yesterday)
        return item.id if item else None

    def message(self, today: QuizItem, ledger: Ledger | None, key: str | None) -> DailyMessage:
        y = self.yesterday_id(ledger, key)
        base = self.opts.base_url
        return DailyMessage(self.opts.day, question_view(self.corpus, today.id, base),
                            question_view(self.corpus, y, base) if y else None)

    def post(self, target: str, today: QuizItem, ledger: Ledger | None, http: httpx.Client | None,
             policy: RetryPolicy, emit: Callable[[str], None]) -> ChannelResult:
        opts = self.opts
        try:
            channel: Channel | None = channel_from_env(target, self.env)
            problem = ""
        except ConfigError as exc:
            channel, problem = None, str(exc)
        if channel is None and not opts.dry_run:
            return ChannelResult(target, "failed", None, f"not configured: {problem}")
        key = f"{target}/{channel.destination if channel else 'unconfigured'}/{opts.stream}"
        if not opts.dry_run and ledger is not None and (rec := ledger.get(key, opts.day)):
            posted = rec.get("question")
            extra = "" if posted == today.id else f"; today's pick is now {today.id}: the bank changed since"
            return ChannelResult(target, "skipped", posted, f"already posted on {opts.day}{extra}")
        try:
            body = payload(target, self.message(today, ledger, key))
        except LimitError as exc:
            return ChannelResult(target, "failed", today.id, str(exc))
        if opts.dry_run:
            emit(self.redact(f"--- {target}: {body.size}{', answer cut' if body.answer_cut else ''} ---\n"
                             + json.dumps(body.body, ensure_ascii=False, indent=2)))
            if channel is None:
                return ChannelResult(target, "failed", today.id, f"payload fits, but not configured: {problem}")
            return ChannelResult(target, "dry-run", today.id, f"fits: {body.size}; nothing sent")
        assert http is not None and ledger is not None and channel is not None
        delivery = deliver(http, channel, body.body, policy, self.redact, sleep=self.sleep)  # type: ignore[arg-type]
        if not delivery.ok:
            return ChannelResult(target, "failed", today.id, delivery.detail)
        ledger.record(key, opts.day, today.id)
        tries = "" if delivery.attempts == 1 else f" after {delivery.attempts} attempts"
        return ChannelResult(target, "posted", today.id, f"accepted{tries}")
