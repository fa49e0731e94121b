"""The daily message and its native payload on each platform, within that platform's limits.

A message is today's question (entry title, difficulty, the question, a link to its page on
the site) and, optionally, yesterday's question with its answer. `payload()` renders it for
one platform and shortens yesterday's answer (never the question) until every limit holds:
whole paragraphs first, then at a sentence end, marking the cut with "…" and a link to read
the rest on the site. Limits are counted the way each platform counts them, conservatively:
UTF-16 code units for Discord and Telegram, UTF-8 bytes for WeCom, Feishu and DingTalk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from kb.bot.text import (
    Block,
    Span,
    attr_escape,
    blocks_of,
    cut,
    discord_escape,
    html_escape,
    plain_length,
    render_blocks,
    render_span,
    slack_escape,
    utf16_len,
)
from kb.model import Corpus

PLATFORMS = ("stdout", "slack", "discord", "feishu", "dingtalk", "wecom", "telegram")
ANSWER_MAX_CHARS = 800  # readable in a chat; the rest is one click away
# Feishu signs in the body: room for "timestamp" (10 digits) and "sign" (44 base64 chars).
SIGNATURE_ROOM = len(',"timestamp":"1234567890","sign":""') + 44
LIMITS = {
    "slack": "3,000 characters per section, 150 per header, 50 blocks",
    "discord": "content 2,000 characters",
    "feishu": "request body 20,000 bytes",
    "dingtalk": "request body 20,000 bytes",
    "wecom": "markdown content 4,096 bytes",
    "telegram": "text 4,096 characters",
    "stdout": "none",
}

HEADER = "每日一题"
OPEN = "打开题目页"
YESTERDAY = "昨日题目"
ANSWER = "参考答案"
MORE = "阅读全文"
CUT_NOTE = "（答案较长，已截断）"


class LimitError(Exception):
    """The message cannot be made to fit the platform's limits."""


@dataclass(frozen=True)
class QuestionView:
    id: str
    entry_id: str
    entry_title: str
    question: tuple[Span, ...]
    difficulty: int
    url: str | None
    answer: tuple[Block, ...]

    @property
    def question_text(self) -> str:
        return "".join(s.text for s in self.question)


@dataclass(frozen=True)
class DailyMessage:
    day: date
    today: QuestionView
    yesterday: QuestionView | None = None


@dataclass(frozen=True)
class Payload:
    platform: str
    body: dict | str  # JSON body, or the text for stdout
    size: str  # how big it is against its limit, for people
    answer_cut: bool


def page_url(base_url: str, entry_id: str, question_id: str) -> str | None:
    """The question's anchor on the static site, or None without a base URL."""
    if not base_url:
        return None
    base = quote(base_url.strip(), safe=":/?#[]@!$&'()*+,;=%~")
    return f"{base.rstrip('/')}/{entry_id}.html#q-{question_id}"


def question_view(corpus: Corpus, question_id: str, base_url: str) -> QuestionView:
    q = corpus.questions[question_id]
    entry = corpus.entries[q.entry_id]
    spans: list[Span] = []
    for b in blocks_of(q.q):  # a question is one line of Markdown, rarely more
        if spans:
            spans.append(Span(" "))
        spans.extend(b.spans if b.code is None else (Span(b.code, code=True),))
    return QuestionView(q.id, entry.id, entry.title, tuple(spans) or (Span(q.q),), q.difficulty,
                        page_url(base_url, entry.id, q.id), tuple(blocks_of(q.answer_md)))


def stars(difficulty: int) -> str:
    return "难度 " + "★" * difficulty + "☆" * max(0, 3 - difficulty)


def _title(msg: DailyMessage) -> str:
    return f"{HEADER} · {msg.day.isoformat()}"


def _question(view: QuestionView, dialect: str) -> str:
    return "".join(render_span(s, dialect) for s in view.question)


# ---- one renderer per platform: (message, answer blocks, answer was cut) -> body ------------


def _plain(msg: DailyMessage, answer: list[Block], was_cut: bool) -> str:
    t = msg.today
    lines = [_title(msg), f"【{t.entry_title}】{stars(t.difficulty)}", t.question_text]
    if t.url:
        lines.append(f"{OPEN}：{t.url}")
    y = msg.yesterday
    if y:
        lines += ["", f"{YESTERDAY}：{y.question_text}（{y.entry_title}）", f"{ANSWER}："]
        if answer:
            lines.append(render_blocks(answer, "plain"))
        if was_cut:
            lines.append(f"{MORE}：{y.url}" if y.url else CUT_NOTE)
        elif y.url:
            lines.append(f"{OPEN}：{y.url}")
    return "\n".join(lines)


def _slack(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    t = msg.today
    head = f"*{slack_escape(t.entry_title)}* · {stars(t.difficulty)}\n{_question(t, 'slack')}"
    if t.url:
        head += f"\n<{t.url}|{OPEN}>"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(msg), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
    ]
    y = msg.yesterday
    if y:
        text = f"*{YESTERDAY}*：{_question(y, 'slack')}（{slack_escape(y.entry_title)}）\n*{ANSWER}*："
        if answer:
            text += "\n" + render_blocks(answer, "slack")
        if was_cut:
            text += f"\n<{y.url}|{MORE}>" if y.url else f"\n{CUT_NOTE}"
        elif y.url:
            text += f"\n<{y.url}|{OPEN}>"
        blocks += [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    fallback = slack_escape(f"{_title(msg)}：{t.question_text}")
    return {"text": fallback, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


def _discord(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    t = msg.today
    lines = [f"**{_title(msg)}**", f"**{discord_escape(t.entry_title)}** · {stars(t.difficulty)}",
             _question(t, "discord")]
    if t.url:
        lines.append(f"[{OPEN}](<{t.url}>)")
    y = msg.yesterday
    if y:
        lines += ["", f"**{YESTERDAY}**：{_question(y, 'discord')}（{discord_escape(y.entry_title)}）", f"**{ANSWER}**："]
        if answer:
            lines.append(render_blocks(answer, "discord"))
        if was_cut:
            lines.append(f"[{MORE}](<{y.url}>)" if y.url else CUT_NOTE)
        elif y.url:
            lines.append(f"[{OPEN}](<{y.url}>)")
    return {"content": "\n".join(lines), "allowed_mentions": {"parse": []}}


def _feishu_spans(spans: tuple[Span, ...] | list[Span], prefix: str = "") -> list[dict]:
    out: list[dict] = [{"tag": "text", "text": prefix}] if prefix else []
    for s in spans:
        if s.href:
            out.append({"tag": "a", "text": s.text, "href": s.href})
            continue
        el: dict = {"tag": "text", "text": s.text}
        style = [name for on, name in ((s.bold, "bold"), (s.italic, "italic"), (s.strike, "lineThrough")) if on]
        if style:
            el["style"] = style
        out.append(el)
    return out


def _feishu(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    t = msg.today
    rows: list[list[dict]] = [
        [{"tag": "text", "text": f"{t.entry_title} · {stars(t.difficulty)}", "style": ["bold"]}],
        _feishu_spans(t.question),
    ]
    if t.url:
        rows.append([{"tag": "a", "text": OPEN, "href": t.url}])
    y = msg.yesterday
    if y:
        rows += [[{"tag": "text", "text": ""}],
                 [{"tag": "text", "text": f"{YESTERDAY}：", "style": ["bold"]}, *_feishu_spans(y.question),
                  {"tag": "text", "text": f"（{y.entry_title}）"}],
                 [{"tag": "text", "text": f"{ANSWER}：", "style": ["bold"]}]]
        for b in answer:
            rows.append([{"tag": "text", "text": b.code}] if b.code is not None else _feishu_spans(b.spans, b.prefix))
        if was_cut:
            rows.append([{"tag": "a", "text": MORE, "href": y.url}] if y.url
                        else [{"tag": "text", "text": CUT_NOTE}])
        elif y.url:
            rows.append([{"tag": "a", "text": OPEN, "href": y.url}])
    return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": _title(msg), "content": rows}}}}


def _markdown_text(msg: DailyMessage, answer: list[Block], was_cut: bool, heading: str) -> str:
    """DingTalk and WeCom Markdown: paragraphs separated by blank lines, `  \\n` for list lines."""
    t = msg.today
    parts = [f"{heading} {_title(msg)}", f"**{t.entry_title}** · {stars(t.difficulty)}", _question(t, "markdown")]
    if t.url:
        parts.append(f"[{OPEN}]({t.url})")
    y = msg.yesterday
    if y:
        parts += ["---", f"**{YESTERDAY}**：{_question(y, 'markdown')}（{y.entry_title}）", f"**{ANSWER}**："]
        if answer:
            parts.append(render_blocks(answer, "markdown", tight_sep="  \n"))
        if was_cut:
            parts.append(f"[{MORE}]({y.url})" if y.url else CUT_NOTE)
        elif y.url:
            parts.append(f"[{OPEN}]({y.url})")
    return "\n\n".join(parts)


def _dingtalk(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    return {"msgtype": "markdown",
            "markdown": {"title": _title(msg), "text": _markdown_text(msg, answer, was_cut, "####")}}


def _wecom(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    return {"msgtype": "markdown", "markdown": {"content": _markdown_text(msg, answer, was_cut, "###")}}


def _telegram(msg: DailyMessage, answer: list[Block], was_cut: bool) -> dict:
    t = msg.today
    lines = [f"<b>{html_escape(_title(msg))}</b>", f"<b>{html_escape(t.entry_title)}</b> · {stars(t.difficulty)}",
             _question(t, "telegram")]
    if t.url:
        lines.append(f'<a href="{attr_escape(t.url)}">{OPEN}</a>')
    y = msg.yesterday
    if y:
        lines += ["", f"<b>{YESTERDAY}</b>：{_question(y, 'telegram')}（{html_escape(y.entry_title)}）",
                  f"<b>{ANSWER}</b>："]
        if answer:
            lines.append(render_blocks(answer, "telegram"))
        if was_cut:
            lines.append(f'<a href="{attr_escape(y.url)}">{MORE}</a>' if y.url else CUT_NOTE)
        elif y.url:
            lines.append(f'<a href="{attr_escape(y.url)}">{OPEN}</a>')
    return {"text": "\n".join(lines), "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}


RENDERERS: dict[str, Callable[[DailyMessage, list[Block], bool], dict | str]] = {
    "stdout": _plain, "slack": _slack, "discord": _discord, "feishu": _feishu,
    "dingtalk": _dingtalk, "wecom": _wecom, "telegram": _telegram,
}


def body_bytes(body: dict) -> bytes:
    """The JSON exactly as it is sent (UTF-8, not ASCII-escaped: that is what limits count)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def violations(platform: str, body: dict | str) -> list[str]:
    """Every limit of `platform` that `body` breaks (empty when it fits)."""
    out = []
    if platform == "slack":
        assert isinstance(body, dict)
        if len(body["blocks"]) > 50:
            out.append(f"{len(body['blocks'])} blocks, over 50")
        for b in body["blocks"]:
            text = b.get("text", {}).get("text", "")
            cap = 150 if b["type"] == "header" else 3000
            if utf16_len(text) > cap:
                out.append(f"{b['type']} text is {utf16_len(text):,} characters, over {cap:,}")
        if utf16_len(body["text"]) > 3000:
            out.append(f"fallback text is {utf16_len(body['text']):,} characters, over 3,000")
    elif platform == "discord":
        n = utf16_len(body["content"])  # type: ignore[index]
        if n > 2000:
            out.append(f"content is {n:,} characters, over 2,000")
    elif platform == "telegram":
        n = utf16_len(body["text"])  # type: ignore[index]
        if n > 4096:
            out.append(f"text is {n:,} characters, over 4,096")
    elif platform == "wecom":
        n = len(body["markdown"]["content"].encode("utf-8"))  # type: ignore[index]
        if n > 4096:
            out.append(f"markdown content is {n:,} bytes, over 4,096")
    elif platform in ("feishu", "dingtalk"):
        n = len(body_bytes(body)) + (SIGNATURE_ROOM if platform == "feishu" else 0)  # type: ignore[arg-type]
        if n > 20000:
            out.append(f"request body is {n:,} bytes, over 20,000")
    return out


def _size(platform: str, body: dict | str) -> str:
    if platform == "stdout":
        return f"{len(body):,} characters"
    if platform == "discord":
        return f"{utf16_len(body['content']):,}/2,000 characters"  # type: ignore[index]
    if platform == "telegram":
        return f"{utf16_len(body['text']):,}/4,096 characters"  # type: ignore[index]
    if platform == "wecom":
        return f"{len(body['markdown']['content'].encode()):,}/4,096 bytes"  # type: ignore[index]
    if platform == "slack":
        longest = max(utf16_len(b.get("text", {}).get("text", "")) for b in body["blocks"])  # type: ignore[index]
        return f"longest section {longest:,}/3,000 characters"
    extra = SIGNATURE_ROOM if platform == "feishu" else 0
    return f"{len(body_bytes(body)) + extra:,}/20,000 bytes"  # type: ignore[arg-type]


def payload(platform: str, msg: DailyMessage) -> Payload:
    """The platform's native body for `msg`, yesterday's answer cut to fit; LimitError if impossible."""
    render = RENDERERS[platform]
    answer = list(msg.yesterday.answer) if msg.yesterday else []

    def fits(blocks: list[Block], was_cut: bool) -> bool:
        return plain_length(blocks) <= ANSWER_MAX_CHARS and not violations(platform, render(msg, blocks, was_cut))

    blocks, was_cut = cut(answer, fits)
    body = render(msg, blocks, was_cut)
    if problems := violations(platform, body):
        raise LimitError(f"{platform}: the message does not fit even without the answer: " + "; ".join(problems))
    return Payload(platform, body, _size(platform, body), was_cut and bool(msg.yesterday))
