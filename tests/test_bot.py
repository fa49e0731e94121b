"""The daily bot against a real loopback HTTP server that plays every chat platform.

The server checks each request the way the platform would (payload shape, size limit,
escaping, signature) and answers like it; tests can script 429s, 5xx, dropped connections and
the platforms' own error codes. Posts go through the real client, via `kb daily` and directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from datetime import date
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT, entry
from typer.testing import CliRunner

from kb.bot import messages
from kb.bot.ledger import Ledger
from kb.bot.transport import Channel, Redactor, RetryPolicy, deliver, dingtalk_sign, feishu_sign, make_client
from kb.cli import app
from kb.loading import load_corpus
from kb.quiz import daily, items_from_corpus

DAY = "2026-03-10"
SLACK_PATH = "/slack/services/T0SLACKSECRET/B0SLACKSECRET/slack-token-s3cr3t"
DISCORD_PATH = "/discord/api/webhooks/424242/discord-token-s3cr3t"
FEISHU_PATH = "/feishu/open-apis/bot/v2/hook/feishu-hook-s3cr3t"
FEISHU_SECRET = "feishu-signing-s3cr3t"
DINGTALK_TOKEN = "dingtalk-access-token-s3cr3t"
DINGTALK_SECRET = "SECdingtalk-signing-s3cr3t"
WECOM_KEY = "wecom-key-s3cr3t"
TELEGRAM_TOKEN = "123456:telegram-token-s3cr3t"
TELEGRAM_CHAT = "-100987654321"
SECRETS = ("s3cr3t", "SLACKSECRET", FEISHU_SECRET, DINGTALK_SECRET, TELEGRAM_TOKEN, DINGTALK_TOKEN, WECOM_KEY,
           "telegram-token", TELEGRAM_CHAT)
ALL = "slack,discord,feishu,dingtalk,wecom,telegram"
FAST_RETRY = {"KB_DAILY_RETRY_ATTEMPTS": "3", "KB_DAILY_RETRY_BASE": "0.01", "KB_DAILY_RETRY_CAP": "0.05",
              "KB_DAILY_RETRY_MAX_WAIT": "5", "KB_DAILY_TIMEOUT": "5"}


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: only its tags, balanced, and & < > always escaped."""

    ALLOWED = {"b", "i", "s", "u", "code", "pre", "a", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag not in self.ALLOWED or (tag == "a" and [k for k, _ in attrs] != ["href"]):
            self.errors.append(f"tag <{tag}> not allowed")
        self.stack.append(tag)

    def handle_endtag(self, tag):  # noqa: ANN001
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data):  # noqa: ANN001
        self.text.append(data)

    def handle_entityref(self, name):  # noqa: ANN001
        if name not in ("lt", "gt", "amp", "quot"):
            self.errors.append(f"entity &{name};")
        self.text.append("x")


def telegram_problems(text: str) -> list[str]:
    parser = TelegramHTML()
    if re.search(r"&(?!(lt|gt|amp|quot);)", text):
        return ["unescaped &"]
    if re.sub(r"</?(b|i|s|u|code|pre|blockquote)>|<a href=\"[^\"<>]*\">|</a>", "", text).count("<"):
        return ["unescaped < or unknown tag"]
    parser.feed(text)
    parser.close()
    if parser.stack:
        parser.errors.append(f"unclosed {parser.stack}")
    if utf16("".join(parser.text)) > 4096:
        parser.errors.append("over 4096 characters")
    return parser.errors


def slack_problems(body: dict) -> list[str]:
    out = []
    if not isinstance(body.get("text"), str) or not body["text"] or not isinstance(body.get("blocks"), list):
        return ["missing text or blocks"]
    if len(body["blocks"]) > 50:
        out.append("over 50 blocks")
    for b in body["blocks"]:
        if b["type"] == "divider":
            continue
        kind, text = b["text"]["type"], b["text"]["text"]
        if b["type"] == "header" and (kind != "plain_text" or utf16(text) > 150):
            out.append("bad header")
        if b["type"] == "section":
            if kind != "mrkdwn" or utf16(text) > 3000:
                out.append(f"bad section ({utf16(text)} chars)")
            for url in re.findall(r"<(https?://[^|<>\s]+)\|", text):
                if re.search(r"&(?!(amp|lt|gt);)", url):
                    out.append("unescaped & in a link")
            bare = re.sub(r"<https?://[^|<>\s]+\|[^<>]*>", "", text)
            if "<" in bare or ">" in bare or re.search(r"&(?!(amp|lt|gt);)", bare):
                out.append("unescaped & < > in mrkdwn")
    return out


class Platforms:
    """A ThreadingHTTPServer on a free loopback port playing all six platforms."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self.script: dict[str, deque] = defaultdict(deque)
        self.feishu_secret = FEISHU_SECRET
        self.dingtalk_secret = DINGTALK_SECRET
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.handle(self, raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "KB_SLACK_WEBHOOK_URL": self.base + SLACK_PATH,
            "KB_DISCORD_WEBHOOK_URL": self.base + DISCORD_PATH,
            "KB_FEISHU_WEBHOOK_URL": self.base + FEISHU_PATH,
            "KB_FEISHU_SECRET": FEISHU_SECRET,
            "KB_DINGTALK_WEBHOOK_URL": f"{self.base}/dingtalk/robot/send?access_token={DINGTALK_TOKEN}",
            "KB_DINGTALK_SECRET": DINGTALK_SECRET,
            "KB_WECOM_WEBHOOK_URL": f"{self.base}/wecom/cgi-bin/webhook/send?key={WECOM_KEY}",
            "KB_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "KB_TELEGRAM_CHAT_ID": TELEGRAM_CHAT,
            "KB_TELEGRAM_API_BASE": self.base + "/telegram",
            **FAST_RETRY,
        }

    def count(self, platform: str) -> int:
        return sum(1 for r in self.requests if r["platform"] == platform)

    def bodies(self, platform: str) -> list[dict]:
        return [r["json"] for r in self.requests if r["platform"] == platform]

    def queue(self, platform: str, *actions: object) -> None:
        self.script[platform].extend(actions)

    # -- the platforms -------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        url = urlsplit(h.path)
        query = parse_qs(url.query)
        platform = next((p for p in ("slack", "discord", "feishu", "dingtalk", "wecom", "telegram")
                         if url.path.startswith(f"/{p}/")), "unknown")
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        self.requests.append({"platform": platform, "path": url.path, "query": query, "json": body, "raw": raw,
                              "content_type": h.headers.get("content-type", "")})
        verdict = self.check(platform, url.path, query, body, raw)
        action = self.script[platform].popleft() if self.script[platform] else None
        if action == "drop":  # read the request, answer nothing, hang up
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, payload = action if action is not None else verdict
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        h.send_response(status)
        for k, v in {"content-type": "application/json" if not isinstance(payload, str) else "text/plain",
                     **headers}.items():
            h.send_header(k, v)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def check(self, platform: str, path: str, query: dict, body: object, raw: bytes) -> tuple:
        """What the real platform would answer (and note any problem for the test to see)."""

        def bad(problem: str, answer: tuple) -> tuple:
            self.problems.append(f"{platform}: {problem}")
            return answer

        if not isinstance(body, dict):
            return bad("body is not a JSON object", (400, {}, "invalid_payload"))
        if platform == "slack":
            if path != SLACK_PATH:
                return bad("wrong path", (404, {}, "no_service"))
            problems = slack_problems(body)
            return bad("; ".join(problems), (400, {}, "invalid_blocks")) if problems else (200, {}, "ok")
        if platform == "discord":
            if query.get("wait") != ["true"] or path != DISCORD_PATH:
                return bad("no wait=true or wrong path", (404, {}, {"code": 10015, "message": "Unknown Webhook"}))
            content = body.get("content", "")
            if body.get("allowed_mentions") != {"parse": []} or not content or utf16(content) > 2000:
                return bad(f"content {utf16(content)} chars or mentions allowed",
                           (400, {}, {"code": 50035, "message": "Invalid Form Body"}))
            return 200, {}, {"id": "1", "content": content}
        if platform == "feishu":
            ts, sign = body.get("timestamp"), body.get("sign")
            if not (isinstance(ts, str) and ts.isdigit() and abs(time.time() - int(ts)) < 3600):
                return bad("timestamp missing or stale", (200, {}, {"code": 19021, "msg": "sign match fail"}))
            expect = base64.b64encode(hmac.new(f"{ts}\n{self.feishu_secret}".encode(), b"",
                                               hashlib.sha256).digest()).decode()
            if sign != expect:
                return 200, {}, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
            post = body.get("content", {}).get("post", {}).get("zh_cn", {})
            rows = post.get("content")
            if body.get("msg_type") != "post" or not post.get("title") or not isinstance(rows, list) or not all(
                    isinstance(el, dict) and el.get("tag") in ("text", "a") and (el["tag"] != "a" or el.get("href"))
                    for row in rows for el in row):
                return bad("not a post", (400, {}, {"code": 9499, "msg": "Bad Request"}))
            if len(raw) > 20000:
                return bad("over 20 KB", (400, {}, {"code": 9499, "msg": "request body too large"}))
            return 200, {}, {"code": 0, "msg": "success", "data": {}}
        if platform == "dingtalk":
            if query.get("access_token") != [DINGTALK_TOKEN]:
                return bad("access_token lost", (200, {}, {"errcode": 300001, "errmsg": "token is not exist"}))
            ts, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            if not ts.isdigit() or len(ts) != 13 or abs(time.time() * 1000 - int(ts)) > 3600 * 1000:
                return bad("timestamp not milliseconds or stale", (200, {}, {"errcode": 310000, "errmsg": "sign"}))
            expect = base64.b64encode(hmac.new(self.dingtalk_secret.encode(), f"{ts}\n{self.dingtalk_secret}".encode(),
                                               hashlib.sha256).digest()).decode()
            if sign != expect:
                return 200, {}, {"errcode": 310000, "errmsg": "sign not match"}
            md = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not md.get("title") or not md.get("text") or len(raw) > 20000:
                return bad("not markdown", (200, {}, {"errcode": 40035, "errmsg": "bad param"}))
            return 200, {}, {"errcode": 0, "errmsg": "ok"}
        if platform == "wecom":
            if query.get("key") != [WECOM_KEY]:
                return bad("key lost", (200, {}, {"errcode": 93000, "errmsg": "invalid webhook url"}))
            content = body.get("markdown", {}).get("content", "")
            if body.get("msgtype") != "markdown" or not content or len(content.encode()) > 4096:
                return bad(f"content {len(content.encode())} bytes", (200, {}, {"errcode": 40058, "errmsg": "too long"}))
            return 200, {}, {"errcode": 0, "errmsg": "ok"}
        if platform == "telegram":
            if path != f"/telegram/bot{TELEGRAM_TOKEN}/sendMessage":
                return 401, {}, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            if body.get("chat_id") != TELEGRAM_CHAT:
                return 400, {}, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            problems = telegram_problems(body.get("text", "")) if body.get("parse_mode") == "HTML" else ["no HTML"]
            if problems:
                return bad("; ".join(problems), (400, {}, {"ok": False, "error_code": 400,
                                                           "description": "Bad Request: can't parse entities"}))
            return 200, {}, {"ok": True, "result": {"message_id": 7}}
        return bad("unknown path", (404, {}, "not found"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platforms():
    p = Platforms()
    yield p
    p.close()


QUESTIONS = """questions:
  - id: {p}-1
    q: 为什么 a < b && c > d 时 *不* 用 `x_y`？
    difficulty: 1
    a: |
      **要点**：因为 <script> & 其它 "符号" 需要转义。公式 $O(n^2)$，见 [论文](https://example.org/p?a=1&b=2)。

      第二段：[[{p}]] 也要讲清楚。
  - id: {p}-2
    q: "{p} 的第二个问题？"
    difficulty: 3
    a: |
      - 列表一
      - 列表二
"""


@pytest.fixture
def bank(make_bank) -> Path:
    return make_bank({
        "alpha.md": entry("Alpha <A&B>", extra="tags: [rag]\n", questions=QUESTIONS.format(p="alpha")),
        "beta.md": entry("Beta", category="inference", questions=QUESTIONS.format(p="beta")),
    })


def long_answer(paragraphs: int = 40) -> str:
    para = "这是一个为了测试截断而写得很长的句子，它会不断重复下去。" * 6
    return "\n\n      ".join(f"第{i}段：{para}" for i in range(paragraphs))


@pytest.fixture
def long_bank(make_bank) -> Path:
    qs = "questions:\n" + "".join(f"  - id: long-{i}\n    q: 很长的答案 {i}？\n    a: |\n      {long_answer()}\n"
                                  for i in range(2))
    return make_bank({"long.md": entry("Long", questions=qs)}, name="long-entries")


def invoke(args: list[str], env: dict[str, str], bank: Path, ledger: Path):
    """`kb daily` in-process; asserts no secret ever reaches stdout or stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    result = CliRunner().invoke(app, ["daily", "--entries", str(bank), "--ledger", str(ledger), "--date", DAY,
                                      "--base-url", "https://kb.example.org/", *args], env={**clean, **env})
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, f"{secret!r} was printed"
    return result


def status(result, channel: str) -> str:
    return next(line for line in result.stderr.splitlines() if line.startswith(channel + ":"))


# ---- formats, signing, ledger ------------------------------------------------------------------


def test_every_platform_gets_its_native_signed_payload(platforms, bank, tmp_path):
    ledger = tmp_path / "ledger.json"
    result = invoke(["--to", ALL, "--to", "stdout", "--with-answer-of-yesterday"], platforms.env(), bank, ledger)
    assert result.exit_code == 0, result.stderr
    assert platforms.problems == []
    for p in ("slack", "discord", "feishu", "dingtalk", "wecom", "telegram"):
        assert platforms.count(p) == 1, p
        assert status(result, p).startswith(f"{p}: posted ")
    corpus = load_corpus(bank)
    today = daily(items_from_corpus(corpus), date.fromisoformat(DAY))
    q = corpus.questions[today.id]
    link = f"https://kb.example.org/{today.entry_id}.html#q-{today.id}"
    assert q.q in result.stdout and link in result.stdout  # stdout: the plain-text message

    slack = platforms.bodies("slack")[0]
    assert slack["blocks"][0]["type"] == "header" and f"<{link}|" in slack["blocks"][1]["text"]["text"]
    discord = platforms.bodies("discord")[0]
    assert discord["allowed_mentions"] == {"parse": []} and f"(<{link}>)" in discord["content"]
    feishu = platforms.bodies("feishu")[0]
    assert feishu["msg_type"] == "post" and {"tag": "a", "text": messages.OPEN, "href": link} in [
        el for row in feishu["content"]["post"]["zh_cn"]["content"] for el in row]
    ding = next(r for r in platforms.requests if r["platform"] == "dingtalk")
    assert len(ding["query"]["timestamp"][0]) == 13 and "sign" not in ding["json"]
    assert f"]({link})" in ding["json"]["markdown"]["text"]
    assert f"]({link})" in platforms.bodies("wecom")[0]["markdown"]["content"]
    tg = platforms.bodies("telegram")[0]
    assert tg["chat_id"] == TELEGRAM_CHAT and tg["parse_mode"] == "HTML" and f'<a href="{link}">' in tg["text"]
    assert all(r["content_type"].startswith("application/json") for r in platforms.requests)
    if today.entry_id == "alpha":
        assert "Alpha &lt;A&amp;B&gt;" in tg["text"] and "Alpha &lt;A&amp;B&gt;" in slack["blocks"][1]["text"]["text"]

    posts = json.loads(ledger.read_text())["posts"]
    assert len(posts) == 6 and all(v[DAY]["question"] == today.id for v in posts.values())

    # A whole cycle: every question (with its < & > and links) as today's and as yesterday's answer.
    for day in ("2026-03-11", "2026-03-12", "2026-03-13", "2026-03-14"):
        result = CliRunner().invoke(app, ["daily", "--entries", str(bank), "--ledger", str(ledger), "--date", day,
                                          "--to", ALL, "--with-answer-of-yesterday"], env=platforms.env())
        assert result.exit_code == 0, result.stderr
    assert platforms.problems == [] and len(platforms.requests) == 30
    assert any("&lt;script&gt; &amp;" in b["text"] for b in platforms.bodies("telegram"))
    assert any("<https://example.org/p?a=1&amp;b=2|" in json.dumps(b, ensure_ascii=False)
               for b in platforms.bodies("slack"))


def test_a_rerun_the_same_day_posts_nothing(platforms, bank, tmp_path):
    ledger = tmp_path / "ledger.json"
    assert invoke(["--to", ALL], platforms.env(), bank, ledger).exit_code == 0
    again = invoke(["--to", ALL], platforms.env(), bank, ledger)
    assert again.exit_code == 0, again.stderr
    assert len(platforms.requests) == 6
    assert all(status(again, p).startswith(f"{p}: skipped") for p in ALL.split(","))
    other_group = invoke(["--to", "slack", "--salt", "group-b"], platforms.env(), bank, ledger)
    assert other_group.exit_code == 0 and platforms.count("slack") == 2  # another stream is another post
    other_chat = invoke(["--to", "telegram"], {**platforms.env(), "KB_TELEGRAM_CHAT_ID": "-1001"}, bank, ledger)
    assert "posted" not in status(other_chat, "telegram")  # another destination: not skipped (chat not found)
    assert platforms.count("telegram") == 2


def test_yesterdays_answer_is_what_the_channel_really_got(platforms, bank, tmp_path):
    ledger = tmp_path / "ledger.json"
    assert invoke(["--to", "slack"], platforms.env(), bank, ledger).exit_code == 0
    data = json.loads(ledger.read_text())
    key = next(iter(data["posts"]))
    posted = data["posts"][key][DAY]["question"]
    other = next(q for q in ("alpha-2", "beta-2", "alpha-1") if q != posted)
    data["posts"][key][DAY]["question"] = other  # as if the bank had changed since
    ledger.write_text(json.dumps(data))
    nxt = CliRunner().invoke(app, ["daily", "--entries", str(bank), "--ledger", str(ledger), "--date", "2026-03-11",
                                   "--to", "slack", "--with-answer-of-yesterday"], env=platforms.env())
    assert nxt.exit_code == 0, nxt.stderr
    text = platforms.bodies("slack")[-1]["blocks"][-1]["text"]["text"]
    corpus = load_corpus(bank)
    assert corpus.questions[other].q.split("？")[0].split(" ")[0] in text
    assert "*参考答案*" in text


def test_long_answers_are_cut_cleanly_within_every_limit(platforms, long_bank, tmp_path):
    result = invoke(["--to", ALL + ",stdout", "--with-answer-of-yesterday"], platforms.env(), long_bank,
                    tmp_path / "l.json")
    assert result.exit_code == 0, result.stderr
    assert platforms.problems == []
    yesterday = daily(items_from_corpus(load_corpus(long_bank)), date(2026, 3, 9))
    link = f"https://kb.example.org/long.html#q-{yesterday.id}"
    texts = {
        "slack": platforms.bodies("slack")[0]["blocks"][-1]["text"]["text"],
        "discord": platforms.bodies("discord")[0]["content"],
        "feishu": json.dumps(platforms.bodies("feishu")[0], ensure_ascii=False),
        "dingtalk": platforms.bodies("dingtalk")[0]["markdown"]["text"],
        "wecom": platforms.bodies("wecom")[0]["markdown"]["content"],
        "telegram": platforms.bodies("telegram")[0]["text"],
        "stdout": result.stdout,
    }
    for name, text in texts.items():
        assert messages.MORE in text and link in text, name
        assert "第0段" in text and "第39段" not in text, name  # the start kept, the end cut
        # cut at a sentence end: the sentence before the "…" is whole
        assert "。…" in text and "…\n…" not in text.replace("\\n", "\n"), name
    assert utf16(texts["discord"]) <= 2000 and len(texts["wecom"].encode()) <= 4096


def test_a_single_huge_sentence_is_cut_at_a_character():
    view = messages.QuestionView("y", "e", "E", (messages.Span("问？"),), 2, "https://x.test/e.html#q-y",
                                 tuple(messages.blocks_of("长" * 9000)))
    msg = messages.DailyMessage(date(2026, 3, 10), view, view)
    for platform in messages.PLATFORMS:
        p = messages.payload(platform, msg)
        assert p.answer_cut and not messages.violations(platform, p.body)
        assert "长…" in json.dumps(p.body, ensure_ascii=False) or "长…" in str(p.body)


# ---- retries and failures ----------------------------------------------------------------------


def test_retry_after_is_honoured(platforms, bank, tmp_path):
    platforms.queue("slack", (429, {"Retry-After": "1"}, "rate_limited"))
    platforms.queue("discord", (429, {}, {"message": "You are being rate limited.", "retry_after": 0.4,
                                          "global": False}))
    platforms.queue("telegram", (429, {}, {"ok": False, "error_code": 429, "description": "Too Many Requests: "
                                           "retry after 1", "parameters": {"retry_after": 1}}))
    times: dict[str, list[float]] = defaultdict(list)
    original = platforms.handle

    def timed(h, raw):  # noqa: ANN001
        times[urlsplit(h.path).path.split("/")[1]].append(time.monotonic())
        original(h, raw)

    platforms.handle = timed  # type: ignore[method-assign]
    result = invoke(["--to", "slack,discord,telegram"], platforms.env(), bank, tmp_path / "l.json")
    assert result.exit_code == 0, result.stderr
    for name, wait in (("slack", 1.0), ("discord", 0.4), ("telegram", 1.0)):
        assert len(times[name]) == 2 and times[name][1] - times[name][0] >= wait - 0.05, name
        assert "after 2 attempts" in status(result, name)


def test_5xx_and_rate_limit_codes_are_retried(platforms, bank, tmp_path):
    platforms.queue("slack", (503, {}, "unavailable"))
    platforms.queue("discord", (502, {}, "bad gateway"))
    platforms.queue("feishu", (200, {}, {"code": 11232, "msg": "frequency limited"}),
                    (200, {}, {"code": 9499, "msg": "too many request"}))
    platforms.queue("dingtalk", (200, {}, {"errcode": 130101, "errmsg": "send too fast"}))
    platforms.queue("wecom", (200, {}, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    platforms.queue("telegram", (500, {}, {"ok": False, "error_code": 500, "description": "Internal"}))
    result = invoke(["--to", ALL], platforms.env(), bank, tmp_path / "l.json")
    assert result.exit_code == 0, result.stderr
    assert {p: platforms.count(p) for p in ALL.split(",")} == {
        "slack": 2, "discord": 2, "feishu": 3, "dingtalk": 2, "wecom": 2, "telegram": 2}
    assert platforms.problems == []  # every retry was re-signed correctly


def test_permanent_errors_stop_at_once_with_a_clear_message(platforms, bank, tmp_path):
    platforms.feishu_secret = "the-bot-has-another-secret"
    platforms.dingtalk_secret = "SECanother-one"
    platforms.queue("slack", (404, {}, "no_service"))
    platforms.queue("discord", (404, {}, {"code": 10015, "message": "Unknown Webhook"}))
    platforms.queue("wecom", (200, {}, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    env = {**platforms.env(), "KB_TELEGRAM_CHAT_ID": "-1009"}
    ledger = tmp_path / "l.json"
    result = invoke(["--to", ALL], env, bank, ledger)
    assert result.exit_code == 1
    assert all(platforms.count(p) == 1 for p in ALL.split(","))  # no retry of a permanent error
    expect = {"slack": ("no_service", "KB_SLACK_WEBHOOK_URL"), "discord": ("10015", "KB_DISCORD_WEBHOOK_URL"),
              "feishu": ("19021", "KB_FEISHU_SECRET"), "dingtalk": ("310000", "KB_DINGTALK_SECRET"),
              "wecom": ("93000", "KB_WECOM_WEBHOOK_URL"), "telegram": ("chat not found", "KB_TELEGRAM_CHAT_ID")}
    for name, words in expect.items():
        line = status(result, name)
        assert line.startswith(f"{name}: failed") and all(w in line for w in words), line
    assert not ledger.exists() or json.loads(ledger.read_text())["posts"] == {}


def test_giving_up_and_waits_too_long(platforms, bank, tmp_path):
    platforms.queue("slack", *[(500, {}, "oops")] * 5)
    platforms.queue("discord", (429, {"Retry-After": "3600"}, {"message": "slow down", "retry_after": 3600}))
    result = invoke(["--to", "slack,discord"], platforms.env(), bank, tmp_path / "l.json")
    assert result.exit_code == 1
    assert platforms.count("slack") == 3 and "gave up after 3 attempts" in status(result, "slack")
    assert platforms.count("discord") == 1 and "3600s" in status(result, "discord")


def test_connection_refused_is_retried_and_does_not_stop_the_others(platforms, bank, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: nothing listens there
    env = {**platforms.env(), "KB_WECOM_WEBHOOK_URL": f"http://127.0.0.1:{dead}/cgi-bin/webhook/send?key={WECOM_KEY}"}
    env.pop("KB_TELEGRAM_BOT_TOKEN")
    result = invoke(["--to", "wecom,telegram,slack"], env, bank, tmp_path / "l.json")
    assert result.exit_code == 1
    assert "gave up after 3 attempts: cannot connect" in status(result, "wecom")
    assert "not configured: telegram: set KB_TELEGRAM_BOT_TOKEN" in status(result, "telegram")
    assert status(result, "slack").startswith("slack: posted") and platforms.count("slack") == 1


def test_no_answer_is_not_retried_it_may_have_been_delivered(platforms, bank, tmp_path):
    platforms.queue("discord", "drop")
    ledger = tmp_path / "l.json"
    result = invoke(["--to", "discord"], platforms.env(), bank, ledger)
    assert result.exit_code == 1 and platforms.count("discord") == 1
    assert "may or may not have been delivered" in status(result, "discord")
    assert not ledger.exists() or json.loads(ledger.read_text())["posts"] == {}


# ---- dry run, errors of the run ----------------------------------------------------------------


def test_dry_run_renders_and_checks_everything_and_sends_nothing(platforms, bank, tmp_path):
    ledger = tmp_path / "l.json"
    result = invoke(["--to", ALL + ",stdout", "--dry-run", "--with-answer-of-yesterday"], platforms.env(), bank,
                    ledger)
    assert result.exit_code == 0, result.stderr
    assert platforms.requests == [] and not ledger.exists()
    for p in ALL.split(","):
        assert f"--- {p}: " in result.stdout and status(result, p).startswith(f"{p}: dry-run")
    assert '"msg_type": "post"' in result.stdout and '"allowed_mentions"' in result.stdout
    unconfigured = invoke(["--to", "slack", "--dry-run"], FAST_RETRY, bank, ledger)
    assert unconfigured.exit_code == 1 and "KB_SLACK_WEBHOOK_URL" in status(unconfigured, "slack")
    assert "--- slack: " in unconfigured.stdout  # rendered all the same


def test_run_level_errors(platforms, bank, make_bank, tmp_path):
    ledger = tmp_path / "l.json"
    nothing = invoke(["--to", "slack", "--tag", "no-such-tag"], platforms.env(), bank, ledger)
    assert nothing.exit_code == 1 and "no question for 2026-03-10" in nothing.stderr
    unknown = invoke(["--to", "slack,irc"], platforms.env(), bank, ledger)
    assert unknown.exit_code == 2 and "unknown target 'irc'" in unknown.output
    ledger.write_text("{not json")
    broken = invoke(["--to", "slack"], platforms.env(), bank, ledger)
    assert broken.exit_code == 1 and "not valid JSON" in broken.stderr and platforms.requests == []
    bad_bank = make_bank({"x.md": entry("X", body="[[nowhere]]")}, name="bad")
    errors = invoke(["--to", "slack"], platforms.env(), bad_bank, tmp_path / "l2.json")
    assert errors.exit_code == 1 and "unresolved-link" in errors.stderr and platforms.requests == []
    bad_retry = invoke(["--to", "slack"], {**platforms.env(), "KB_DAILY_RETRY_BASE": "soon"}, bank, tmp_path / "l3")
    assert bad_retry.exit_code == 1 and "KB_DAILY_RETRY_BASE must be a number" in bad_retry.stderr


def test_help_names_every_environment_variable():
    result = CliRunner().invoke(app, ["daily", "--help"])
    for name in ("KB_SLACK_WEBHOOK_URL", "KB_DISCORD_WEBHOOK_URL", "KB_FEISHU_WEBHOOK_URL", "KB_FEISHU_SECRET",
                 "KB_DINGTALK_WEBHOOK_URL", "KB_DINGTALK_SECRET", "KB_WECOM_WEBHOOK_URL", "KB_TELEGRAM_BOT_TOKEN",
                 "KB_TELEGRAM_CHAT_ID", "KB_TELEGRAM_API_BASE", "KB_DAILY_RETRY_ATTEMPTS"):
        assert name in result.output, name


# ---- the client directly -----------------------------------------------------------------------


def test_deliver_directly_signs_both_ways(platforms):
    policy = RetryPolicy(attempts=2, base=0.01, cap=0.01)
    body = {"msgtype": "markdown", "markdown": {"title": "t", "text": "每日一题"}}
    feishu_body = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "t", "content": [
        [{"tag": "text", "text": "每日一题"}]]}}}}
    redact = Redactor()
    with make_client(policy) as client:
        ok = deliver(client, Channel("dingtalk", f"{platforms.base}/dingtalk/robot/send?access_token={DINGTALK_TOKEN}",
                                     secret=DINGTALK_SECRET), body, policy, redact)
        assert ok.ok and ok.attempts == 1
        ok = deliver(client, Channel("feishu", platforms.base + FEISHU_PATH, secret=FEISHU_SECRET), feishu_body,
                     policy, redact)
        assert ok.ok
        # Each platform's signature is rejected by the other's rule: they really differ.
        assert feishu_sign(1700000000, "s") != dingtalk_sign(1700000000 * 1000, "s")
        wrong = deliver(client, Channel("feishu", platforms.base + FEISHU_PATH, secret=DINGTALK_SECRET), feishu_body,
                        policy, redact)
        assert not wrong.ok and "19021" in wrong.detail and wrong.attempts == 1
    assert platforms.problems == []
    ding = platforms.requests[0]
    ts = ding["query"]["timestamp"][0]
    expect = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(),
                                       hashlib.sha256).digest()).decode()
    assert ding["query"]["sign"] == [expect] and "%2B" not in ding["path"]


def test_redactor_hides_urls_tokens_and_their_encodings():
    red = Redactor()
    url = "https://oapi.example.com/robot/send?access_token=abcdef123456&x=1"
    red.add(url, url=True)
    red.add("tok+en/with=chars")
    text = (f"GET {url} failed; token abcdef123456; path /robot/send?access_token=abcdef123456; "
            "tok%2Ben%2Fwith%3Dchars tok+en/with=chars")
    out = red(text)
    assert "abcdef123456" not in out and "tok" not in out.replace("token", "")


def test_real_process_posts_and_prints_no_secret(platforms, bank, tmp_path):
    """The installed entry point in its own process, httpx logging on at DEBUG in the parent env."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KB_")}, **platforms.env()}
    code = ("import logging, sys; logging.basicConfig(level=logging.DEBUG); from kb.cli import app; "
            "sys.argv = ['kb'] + sys.argv[1:]; app()")
    platforms.queue("telegram", "drop")
    done = subprocess.run([sys.executable, "-c", code, "daily", "--entries", str(bank), "--ledger",
                           str(tmp_path / "l.json"), "--date", DAY, "--to", "slack,telegram,feishu"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert "slack: posted" in done.stderr and "feishu: posted" in done.stderr and "telegram: failed" in done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout and secret not in done.stderr, secret
    ledger = Ledger(tmp_path / "l.json")
    ledger.load()
    assert sorted(k.split("/")[0] for k in ledger.posts) == ["feishu", "slack"]  # not the undelivered one


def test_payload_limits_are_checked_exactly():
    big = {"msgtype": "markdown", "markdown": {"content": "字" * 1366}}  # 4,098 bytes
    assert messages.violations("wecom", big) == ["markdown content is 4,098 bytes, over 4,096"]
    assert messages.violations("wecom", {"msgtype": "markdown", "markdown": {"content": "字" * 1365}}) == []
    emoji = {"content": "😀" * 1001, "allowed_mentions": {"parse": []}}  # 2,002 UTF-16 units
    assert messages.violations("discord", emoji) and not messages.violations("discord", {"content": "😀" * 1000})
    assert messages.violations("telegram", {"text": "a" * 4097}) and not messages.violations("telegram",
                                                                                              {"text": "a" * 4096})


def test_client_never_follows_redirects(platforms):
    policy = RetryPolicy(attempts=1)
    platforms.queue("slack", (302, {"Location": "http://127.0.0.1:1/elsewhere"}, ""))
    with make_client(policy) as client:
        got = deliver(client, Channel("slack", platforms.base + SLACK_PATH), {"text": "x", "blocks": []}, policy,
                      Redactor())
    assert not got.ok and "redirect" in got.detail and platforms.count("slack") == 1
