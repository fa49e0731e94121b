"""Question selection (kb.quiz): daily cycles and streams, random picks, question-id stability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kb import quiz
from kb.build import manifest_of
from kb.cli import app
from kb.loading import load_corpus
from kb.question_ids import previous_question_ids, question_id_issues
from kb.quiz import EPOCH, QuizItem, daily, items_from_corpus, random_pick, schedule, start_date
from conftest import entry

# ---- strategies and a reference model ------------------------------------------------------

TAGS = ("rag", "ann", "llm")


def item(qid: str, added: date | None = None, tags: tuple[str, ...] = (), category: str = "rag",
         difficulty: int = 2) -> QuizItem:
    return QuizItem(qid, "e-" + qid, added, tags, category, difficulty)


def banks(min_size: int = 1, max_size: int = 25, first: int = -20, last: int = 60):
    """Small banks: unique ids, `added` around EPOCH or unset, a few tags, two categories."""
    row = st.tuples(st.integers(0, 9999), st.one_of(st.none(), st.integers(first, last)),
                    st.sets(st.sampled_from(TAGS), max_size=2), st.sampled_from(("rag", "inference")),
                    st.integers(1, 3))
    return st.lists(row, min_size=min_size, max_size=max_size, unique_by=lambda r: r[0]).map(
        lambda rows: [item(f"q{n}", None if off is None else EPOCH + timedelta(days=off), tuple(sorted(tags)), cat, d)
                      for n, off, tags, cat, d in rows])


def reference_cycles(items: list[QuizItem], until: date):
    """Cycles straight from the definition, day by day: (start, frozen member ids)."""
    day = max([EPOCH] + [min(start_date(i) for i in items)]) if items else None
    while day is not None and day <= until:
        members = {i.id for i in items if start_date(i) <= day}
        yield day, members
        day += timedelta(days=len(members))


def assert_cycles_hold(items: list[QuizItem], days: int, **kw) -> list[QuizItem | None]:
    """Every cycle of the reference model asks each of its frozen members exactly once."""
    got = schedule(items, EPOCH, days, **kw)
    pool = quiz.filter_items(items, tag=kw.get("tag"), category=kw.get("category"), difficulty=kw.get("difficulty"))
    last = EPOCH + timedelta(days=days - 1)
    cycles = list(reference_cycles(pool, last))
    first_day = cycles[0][0] if cycles else last + timedelta(days=1)
    assert all(x is None for x in got[: (first_day - EPOCH).days]), "no question before the first cycle"
    for start, members in cycles:
        offset = (start - EPOCH).days
        asked = [x.id for x in got[offset: offset + len(members)] if x is not None]
        complete = offset + len(members) <= days
        if complete:
            assert sorted(asked) == sorted(members), f"cycle at {start} is not a permutation of its members"
        else:
            assert len(asked) == len(set(asked)) and set(asked) <= members
    return got


# ---- properties --------------------------------------------------------------------------------

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(banks(), st.text(max_size=8))
def test_every_cycle_asks_each_member_once(items, salt):
    assert_cycles_hold(items, 150, salt=salt)


@FAST
@given(banks(), st.sampled_from(TAGS + (None,)), st.sampled_from(("rag", "inference", None)),
       st.sampled_from((1, 2, 3, None)))
def test_filtered_streams_cycle_over_their_own_questions(items, tag, category, difficulty):
    got = assert_cycles_hold(items, 120, tag=tag, category=category, difficulty=difficulty)
    for x in got:
        if x is not None:
            assert (tag is None or tag in x.tags) and (category is None or x.category == category)
            assert difficulty is None or x.difficulty == difficulty


@FAST
@given(banks(), banks(min_size=1, max_size=10, first=0, last=90), st.integers(0, 80), st.text(max_size=4))
def test_adding_questions_never_changes_a_past_day(items, extra, today, salt):
    """New questions dated after day D (the normal case: added today or later) leave days <= D alone."""
    d = EPOCH + timedelta(days=today)
    known = {i.id for i in items}
    added = [QuizItem(i.id + "-new", i.entry_id, d + timedelta(days=1 + (i.added - EPOCH).days % 30)
                      if i.added else d + timedelta(days=1), i.tags, i.category, i.difficulty)
             for i in extra if i.id + "-new" not in known]
    before = schedule(items, EPOCH, today + 1, salt=salt)
    after = schedule(items + added, EPOCH, today + 1, salt=salt)
    assert before == after


@FAST
@given(banks(min_size=2), st.text(max_size=4))
def test_never_the_same_question_two_days_running(items, salt):
    got = schedule(items, EPOCH, 150, salt=salt)
    for day, (a, b) in enumerate(zip(got, got[1:])):
        if a is not None and b is not None:
            members_next = sum(1 for i in items if start_date(i) <= EPOCH + timedelta(days=day + 1))
            assert a.id != b.id or members_next < 2


@FAST
@given(banks(min_size=2), st.data())
def test_a_removed_question_is_skipped_not_crashed_on(items, data):
    gone = data.draw(st.sampled_from(items))
    rest = [i for i in items if i is not gone]
    got = assert_cycles_hold(rest, 120)  # still a valid schedule of what is left
    assert all(x is None or x.id != gone.id for x in got)
    full = schedule(items, EPOCH, 120)
    first_slot = next((n for n, x in enumerate(full) if x is not None and x.id == gone.id), 120)
    assert got[:first_slot] == full[:first_slot], "days before the removed question's first slot are unchanged"


@FAST
@given(banks(), st.integers(-400, 800), st.text(max_size=5))
def test_daily_is_schedule_and_a_pure_function(items, offset, salt):
    day = EPOCH + timedelta(days=offset)
    quiz._stream.cache_clear()
    one = daily(items, day, salt=salt)
    assert one == daily(list(reversed(items)), day, salt=salt)  # input order does not matter
    assert one == schedule(items, day, 1, salt=salt)[0]
    if day < EPOCH:
        assert one is None


def reference_schedule(items: list[QuizItem], days: int, salt: str = "") -> list[str | None]:
    """The documented order, day by day: each cycle's frozen members sorted by
    sha256([salt, stream, cycle, id]); the first two swapped when the first is the question
    asked last."""
    got: list[str | None] = [None] * days
    last = None
    for n, (start, members) in enumerate(reference_cycles(items, EPOCH + timedelta(days=days - 1))):
        order = sorted(members, key=lambda q: (quiz.order_digest(salt, "all", n, q), q))
        if last is not None and len(order) > 1 and order[0] == last:
            order[0], order[1] = order[1], order[0]
        for i, q in enumerate(order):
            if (start - EPOCH).days + i < days:
                got[(start - EPOCH).days + i] = q
        last = order[-1]
    return got


@FAST
@given(banks(min_size=1, max_size=4, first=-5, last=40), st.text(max_size=3))
def test_schedule_is_the_documented_order(items, salt):
    """Small, growing banks (runs of 1-, 2- and 3-question cycles): exactly the reference."""
    quiz._stream.cache_clear()
    assert [x.id if x else None for x in schedule(items, EPOCH, 300, salt=salt)] == reference_schedule(items, 300, salt)


def test_far_future_days_are_instant():
    """A 2-question stream used to walk back cycle by cycle: 30 s for a date in year 9999."""
    items = [item("a", EPOCH), item("b", EPOCH + timedelta(days=3)), item("c", EPOCH + timedelta(days=40))]
    for pool in (items[:2], items):
        quiz._stream.cache_clear()
        t = time.perf_counter()
        assert daily(pool, date(9999, 12, 31)) is not None
        assert time.perf_counter() - t < 0.5


# ---- examples ----------------------------------------------------------------------------------


def test_before_epoch_and_before_the_first_question_there_is_nothing():
    items = [item("a", EPOCH + timedelta(days=10)), item("b", EPOCH + timedelta(days=12))]
    assert daily(items, EPOCH - timedelta(days=1)) is None
    assert daily(items, EPOCH + timedelta(days=9)) is None
    assert daily(items, EPOCH + timedelta(days=10)).id == "a"  # cycle 0: only a, one day
    assert daily(items, EPOCH + timedelta(days=11)).id == "a"  # cycle 1 starts before b is added
    assert {daily(items, EPOCH + timedelta(days=12 + k)).id for k in range(2)} == {"a", "b"}
    assert daily([], EPOCH) is None
    assert daily(items, EPOCH + timedelta(days=30), tag="nothing-has-it") is None


def test_salt_and_filters_are_streams_of_their_own():
    items = [item(f"q{i:02d}", None, ("rag",) if i % 2 else ("ann",), difficulty=1 + i % 3) for i in range(30)]
    plain = [x.id for x in schedule(items, EPOCH, 30)]
    salted = [x.id for x in schedule(items, EPOCH, 30, salt="group-b")]
    assert sorted(plain) == sorted(salted) and plain != salted
    rag = [x.id for x in schedule(items, EPOCH, 15, tag="rag")]
    assert len(set(rag)) == 15 and all(int(q[1:]) % 2 for q in rag)
    # The same members under another filter name still get another order.
    same = [item(f"s{i}", None, ("x", "y")) for i in range(12)]
    assert [x.id for x in schedule(same, EPOCH, 12, tag="x")] != [x.id for x in schedule(same, EPOCH, 12, tag="y")]


def test_400_days_of_a_300_question_bank_are_fast():
    items = [item(f"q{i:03d}", EPOCH + timedelta(days=i // 40), (TAGS[i % 3],), difficulty=1 + i % 3)
             for i in range(300)]
    quiz._stream.cache_clear()
    t0 = time.perf_counter()
    days = [daily(items, EPOCH + timedelta(days=k)) for k in range(400)]
    by_day = time.perf_counter() - t0
    quiz._stream.cache_clear()
    t0 = time.perf_counter()
    assert schedule(items, EPOCH, 400) == days
    at_once = time.perf_counter() - t0
    t0 = time.perf_counter()
    schedule(items, EPOCH, 400, tag="rag", difficulty=2)
    filtered = time.perf_counter() - t0
    assert by_day < 0.5 and at_once < 0.3 and filtered < 0.3, (by_day, at_once, filtered)
    assert daily(items, date(2046, 1, 1)) is not None  # twenty years on: still quick, no day-by-day walk


SUBPROCESS = """
import json, sys
from datetime import date, timedelta
from kb.quiz import QuizItem, schedule
rows = json.load(sys.stdin)
items = [QuizItem(r[0], r[1], date.fromisoformat(r[2]) if r[2] else None, tuple(r[3]), r[4], r[5]) for r in rows]
print(json.dumps([[x.id if x else None for x in schedule(items, date(2026, 1, 1), 200, salt=s, tag=t)]
                  for s, t in (("", None), ("team-7", None), ("", "rag"))]))
"""


def test_deterministic_across_processes():
    items = [item(f"q{i}", EPOCH + timedelta(days=i % 17) if i % 4 else None, (TAGS[i % 3],)) for i in range(40)]
    rows = [[i.id, i.entry_id, i.added.isoformat() if i.added else None, list(i.tags), i.category, i.difficulty]
            for i in items]
    here = [[x.id if x else None for x in schedule(items, EPOCH, 200, salt=s, tag=t)]
            for s, t in (("", None), ("team-7", None), ("", "rag"))]
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", SUBPROCESS], input=json.dumps(rows), capture_output=True,
                              text=True, env=env, check=True, timeout=60)
        assert json.loads(done.stdout) == here


def test_random_pick_is_uniform_filtered_and_reproducible():
    items = [item(f"q{i}", None, ("rag",) if i < 6 else (), difficulty=1 + i % 3) for i in range(12)]
    assert random_pick(items, seed=7) == random_pick(list(reversed(items)), seed=7)
    assert random_pick(items, seed="abc") == random_pick(items, seed="abc")
    assert random_pick(items, tag="none") is None and random_pick([]) is None
    counts = Counter(random_pick(items, tag="rag", seed=s).id for s in range(6000))
    assert set(counts) == {f"q{i}" for i in range(6)}
    assert all(850 < n < 1150 for n in counts.values()), counts  # 1000 expected each
    assert all(random_pick(items, difficulty=3).difficulty == 3 for _ in range(20))
    assert random_pick(items, category="rag", difficulty=1, tag="rag").id in {"q0", "q3"}


def test_items_from_corpus(make_bank):
    bank = make_bank({
        "a.md": entry("Alpha", extra="tags: [x, y]\n", questions=(
            "questions:\n  - id: a-1\n    q: one?\n    a: 答案\n"
            "  - id: a-2\n    q: two?\n    difficulty: 3\n    added: 2026-03-01\n    a: 答案\n")),
        "b.md": entry("Beta", category="inference"),
    })
    corpus = load_corpus(bank)
    assert not corpus.errors, corpus.errors
    got = {i.id: i for i in items_from_corpus(corpus)}
    assert got["a-1"] == QuizItem("a-1", "a", date(2026, 1, 1), ("x", "y"), "rag", 2)
    assert got["a-2"].added == date(2026, 3, 1) and got["a-2"].difficulty == 3
    assert [i.id for i in items_from_corpus(corpus)] == sorted(got)


# ---- question-id stability (kb check) ---------------------------------------------------------


def test_check_warns_when_a_question_id_disappears(make_bank, tmp_path):
    files = {
        "a.md": entry("Alpha", questions="questions:\n  - id: a-1\n    q: one?\n    a: 答案\n"
                                         "  - id: a-2\n    q: two?\n    a: 答案\n"),
        "b.md": entry("Beta", questions="questions:\n  - id: b-1\n    q: one?\n    a: 答案\n"),
    }
    bank = make_bank(files)
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps(manifest_of(load_corpus(bank))), encoding="utf-8")
    assert previous_question_ids(build) == {"a": ["a-1", "a-2"], "b": ["b-1"]}
    assert question_id_issues(load_corpus(bank), previous_question_ids(build)) == []

    files["a.md"] = entry("Alpha", questions="questions:\n  - id: a-1\n    q: one?\n    a: 答案\n"
                                             "  - id: a-two\n    q: two?\n    added: 2026-01-01\n    a: 答案\n")
    del files["b.md"]
    bank = make_bank(files)
    (bank / "b.md").unlink()
    issues = question_id_issues(load_corpus(bank), previous_question_ids(build), today=date(2026, 6, 1))
    codes = sorted((i.code, i.severity) for i in issues)
    assert codes == [("question-added-in-past", "warning"), ("question-id-removed", "warning"),
                     ("question-id-removed", "warning")]
    renamed = next(i for i in issues if "'a-2'" in i.message)
    assert "renamed to 'a-two'" in renamed.hint and renamed.path.endswith("a.md")

    result = CliRunner().invoke(app, ["check", "--entries", str(bank), "--out", str(build)])
    assert result.exit_code == 0, result.output
    assert "[question-id-removed] question id 'a-2'" in result.output
    assert "[question-id-removed] question id 'b-1'" in result.output
    strict = CliRunner().invoke(app, ["check", "--entries", str(bank), "--out", str(build), "--strict"])
    assert strict.exit_code == 1


def test_no_previous_build_no_warning(make_bank, tmp_path):
    bank = make_bank({"a.md": entry("Alpha")})
    assert previous_question_ids(tmp_path / "nothing") is None
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"entries": {"a": {"hash": "x"}}}), encoding="utf-8")
    assert previous_question_ids(old) is None  # a manifest from before question ids were recorded
    assert question_id_issues(load_corpus(bank), None) == []


@pytest.mark.parametrize("days", [1, 7, 365])
def test_schedule_lengths(days):
    assert len(schedule([item("a")], EPOCH, days)) == days
