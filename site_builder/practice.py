"""Data files of the practice page: the question list, answer shards and the daily schedule.

Answers are split into shards by entry (crc32 of the id), loaded on demand by a script tag
(works from file://, where fetch() of local files is blocked), so the practice page does not
download every answer of the bank. The daily schedule is precomputed with `kb.quiz`, the
selection `kb daily` and `GET /questions/daily` use, so all three agree on every date.
"""

from __future__ import annotations

import json
import zlib
from datetime import date, timedelta

from kb import quiz
from kb.model import Corpus
from site_builder.context import SiteData

DAYS_BEFORE = 30
DAYS_AFTER = 400
ANSWERS_PER_SHARD = 120


def _js(name: str, data: object) -> str:
    return f"window.{name}=" + json.dumps(data, ensure_ascii=False, separators=(",", ":")) + ";\n"


def shard_count(n_questions: int) -> int:
    """A power of two near n / ANSWERS_PER_SHARD (so it rarely changes), at most 256."""
    k = 1
    while k * ANSWERS_PER_SHARD < n_questions and k < 256:
        k *= 2
    return k


def shard_of(entry_id: str, shards: int) -> int:
    return zlib.crc32(entry_id.encode()) % shards


def questions_js(site: SiteData, shards: int) -> str:
    """Every question with what the filters need: `window.KB_QUESTIONS`."""
    corpus = site.corpus
    cats = list(site.categories)
    tags = list(site.by_tag)
    tag_i = {t: i for i, t in enumerate(tags)}
    qs = []
    for key, ids in site.by_category.items():
        for eid in ids:
            e = corpus.entries[eid]
            tix = [tag_i[t] for t in dict.fromkeys(e.tags)]
            shard = shard_of(e.id, shards)
            cat = cats.index(key)
            for q in e.questions:
                qs.append([q.id, e.id, q.q, cat, q.difficulty, tix, shard])
    data = {"cats": [[k, site.categories[k]] for k in cats], "tags": [[t, site.slugs[t]] for t in tags],
            "entries": {e.id: e.title for e in corpus.entries.values()}, "qs": qs}
    return _js("KB_QUESTIONS", data)


def answers_of(corpus: Corpus, entry_ids: list[str]) -> dict[str, str]:
    """{question id: answer HTML} of the entries `entry_ids` (one shard's, in bank order)."""
    return {q.id: q.answer_html for entry_id in entry_ids for q in corpus.entries[entry_id].questions}


def answers_js(shard: int, answers: dict[str, str]) -> str:
    """The data file of one shard: registers its answers in `window.KB_ANSWERS[shard]`."""
    return ("(window.KB_ANSWERS=window.KB_ANSWERS||{})[" + str(shard) + "]="
            + json.dumps(answers, ensure_ascii=False, separators=(",", ":")) + ";\n")


def daily_schedule(site: SiteData) -> dict:
    """The question of every day from today - DAYS_BEFORE to today + DAYS_AFTER (kb.quiz)."""
    corpus = site.corpus
    first = site.today - timedelta(days=DAYS_BEFORE)
    days = DAYS_BEFORE + DAYS_AFTER + 1
    picks = quiz.schedule(quiz.items_from_corpus(corpus), first, days)
    index: dict[str, int] = {}
    qs: list[list] = []
    ids: list[int] = []
    questions = corpus.questions
    for item in picks:
        if item is None or item.id not in questions:
            ids.append(-1)
            continue
        if item.id not in index:
            q = questions[item.id]
            e = corpus.entries[q.entry_id]
            index[item.id] = len(qs)
            qs.append([q.id, e.id, e.title, q.q, q.difficulty])
        ids.append(index[item.id])
    return {"start": first.isoformat(), "days": ids, "qs": qs}


def daily_js(schedule: dict) -> str:
    return _js("KB_DAILY", schedule)


def question_of(schedule: dict, day: date) -> dict | None:
    """The schedule's question for `day`, as the home page shows it."""
    offset = (day - date.fromisoformat(schedule["start"])).days
    if not 0 <= offset < len(schedule["days"]) or schedule["days"][offset] < 0:
        return None
    qid, eid, title, q, diff = schedule["qs"][schedule["days"][offset]]
    return {"date": day.isoformat(), "id": qid, "entry_id": eid, "entry_title": title, "q": q, "difficulty": diff}
