"""GET /questions/random, /questions/daily and /questions/{id}."""

from __future__ import annotations

from datetime import date as Date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import BankDep
from api.errors import ERROR_RESPONSES, ApiError
from api.schemas import DailyOut, QuestionOut
from kb import quiz
from kb.bank import Bank
from kb.store import QuestionRow

router = APIRouter(prefix="/questions", tags=["questions"], responses=ERROR_RESPONSES)
Difficulty = Annotated[int | None, Query(ge=1, le=3)]
Filter = Annotated[str | None, Query(max_length=200)]


def question_out(bank: Bank, q: QuestionRow) -> dict:
    return {
        "id": q.id, "entry_id": q.entry_id, "entry_title": bank.titles.get(q.entry_id, q.entry_id), "q": q.q,
        "answer_md": q.answer_md, "answer_html": q.answer_html, "difficulty": q.difficulty, "added": q.added,
        "url": f"{q.entry_id}.html#q-{q.id}",
    }


def _found(bank: Bank, item: quiz.QuizItem | None) -> QuestionRow:
    row = bank.question(item.id) if item else None
    if row is None:
        raise ApiError(404, "no_question", "no question matches these filters; loosen tag, category or difficulty")
    return row


@router.get("/random", response_model=QuestionOut)
def random_question(
    bank: BankDep, response: Response, tag: Filter = None, category: Filter = None, difficulty: Difficulty = None,
    seed: Annotated[int | None, Query(description="Same seed, same question (for a given build).")] = None,
) -> dict:
    """A uniformly random question among those matching the filters."""
    item = quiz.random_pick(bank.quiz_items(), tag=tag, category=category, difficulty=difficulty, seed=seed)
    if seed is None:
        response.headers["Cache-Control"] = "no-store"
    return question_out(bank, _found(bank, item))


@router.get("/daily", response_model=DailyOut)
def daily_question(
    bank: BankDep,
    date: Annotated[Date | None, Query(description="YYYY-MM-DD; today by default.")] = None,
    tag: Filter = None, category: Filter = None, difficulty: Difficulty = None,
    salt: Annotated[str, Query(max_length=100, description="A group's own stream.")] = "",
) -> dict:
    """The question of the day: the same one `kb daily` posts and the site shows."""
    day = date or Date.today()
    item = quiz.daily(bank.quiz_items(), day, salt=salt, tag=tag, category=category, difficulty=difficulty)
    return question_out(bank, _found(bank, item)) | {"date": day}


@router.get("/{question_id}", response_model=QuestionOut)
def get_question(bank: BankDep, question_id: Annotated[str, Path(max_length=200)]) -> dict:
    """One question with its answer."""
    row = bank.question(question_id)
    if row is None:
        close = [q for q in bank.index.questions if question_id.split("-")[0] in q][:3]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ApiError(404, "not_found", f"no question '{question_id}'{hint}")
    return question_out(bank, row)
