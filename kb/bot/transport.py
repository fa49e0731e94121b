"""Posting a payload to a chat platform: configuration, signing, retries, redaction.

Configuration comes only from environment variables (`ENV_VARS`). Success is what the
platform says, not HTTP 200: Slack answers the body `ok`, Discord 204 (200 with `wait=true`,
which is what we ask for), Feishu `{"code": 0}`, DingTalk and WeCom `{"errcode": 0}`, Telegram
`{"ok": true}`.

A post is retried, with capped exponential backoff, only when it was certainly not delivered:
the connection could not be made, HTTP 429 (waiting what Retry-After, `retry_after` or
`parameters.retry_after` asks), a 5xx, or a platform's rate-limit code (Feishu 11232 and 9499,
DingTalk 130101, WeCom 45009). A request that went out and got no answer (read timeout,
dropped connection) may have been delivered: it is not retried, and the failure says so.
Every other answer is a permanent failure with the platform's own code and message and a hint.

Nothing printed or raised here contains a webhook URL, token or secret: every message passes
through a `Redactor` that knows them all (and their URL-encoded forms). httpx's own request
log, which names the URL, is turned down to warnings.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx

from kb.bot.messages import body_bytes

TELEGRAM_API = "https://api.telegram.org"
# platform -> (required variables, optional variables)
ENV_VARS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "slack": (("KB_SLACK_WEBHOOK_URL",), ()),
    "discord": (("KB_DISCORD_WEBHOOK_URL",), ()),
    "feishu": (("KB_FEISHU_WEBHOOK_URL",), ("KB_FEISHU_SECRET",)),
    "dingtalk": (("KB_DINGTALK_WEBHOOK_URL",), ("KB_DINGTALK_SECRET",)),
    "wecom": (("KB_WECOM_WEBHOOK_URL",), ()),
    "telegram": (("KB_TELEGRAM_BOT_TOKEN", "KB_TELEGRAM_CHAT_ID"), ("KB_TELEGRAM_API_BASE",)),
}
SECRET_VARS = tuple(v for req, opt in ENV_VARS.values() for v in (*req, *opt) if v != "KB_TELEGRAM_API_BASE")
RETRY_VARS = ("KB_DAILY_RETRY_ATTEMPTS", "KB_DAILY_RETRY_BASE", "KB_DAILY_RETRY_CAP", "KB_DAILY_RETRY_MAX_WAIT",
              "KB_DAILY_TIMEOUT")
RATE_LIMIT_CODES = {"feishu": {11232, 9499}, "dingtalk": {130101}, "wecom": {45009}}
HINTS = {
    ("slack", "invalid_payload"): "the message was rejected as malformed",
    ("slack", "no_service"): "the webhook was removed or KB_SLACK_WEBHOOK_URL is wrong",
    ("slack", "channel_not_found"): "the webhook's channel no longer exists",
    ("slack", "channel_is_archived"): "the webhook's channel is archived",
    ("slack", "action_prohibited"): "a workspace admin restricted this webhook",
    ("slack", "invalid_token"): "the webhook was revoked: create a new one",
    ("discord", 10015): "unknown webhook: it was deleted or KB_DISCORD_WEBHOOK_URL is wrong",
    ("discord", 50027): "invalid webhook token in KB_DISCORD_WEBHOOK_URL",
    ("feishu", 19021): "signature check failed: check KB_FEISHU_SECRET (and the clock: it must be within 1 hour)",
    ("feishu", 19022): "the bot's IP allow-list rejects this machine",
    ("feishu", 19024): "the bot's keyword check failed: add a keyword the message contains, e.g. 每日一题",
    ("feishu", 19001): "the webhook URL is not valid: check KB_FEISHU_WEBHOOK_URL",
    ("dingtalk", 310000): "security check failed: check KB_DINGTALK_SECRET, the robot's keyword (e.g. 每日一题) "
                          "or its IP allow-list",
    ("dingtalk", 300001): "the access token is not valid: check KB_DINGTALK_WEBHOOK_URL",
    ("dingtalk", 130101): "DingTalk blocks a robot for 10 minutes after 20 messages in a minute",
    ("wecom", 93000): "the webhook key is not valid: check KB_WECOM_WEBHOOK_URL",
    ("wecom", 45009): "WeCom allows 20 messages a minute per robot",
    ("telegram", 401): "the bot token is not valid: check KB_TELEGRAM_BOT_TOKEN",
    ("telegram", 400): "check KB_TELEGRAM_CHAT_ID and that the bot is a member of that chat",
    ("telegram", 403): "the bot cannot post there: add it to the chat (as an admin for a channel)",
}


class ConfigError(Exception):
    """A channel or the retry policy is not configured correctly (the message names variables, never values)."""


def _secretish(segment: str) -> bool:
    """A URL path segment that may be a key: long, or with digits (Slack's T0123ABCD ids)."""
    return len(segment) >= 16 or (len(segment) >= 6 and any(c.isdigit() for c in segment))


class Redactor:
    """Replaces every known secret (and its URL-encoded forms, and the parts of secret URLs) by ***."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | None, *, url: bool = False) -> None:
        if not value or len(value) < 4:
            return
        parts = {value}
        if url:
            split = urlsplit(value)
            parts |= {seg for seg in split.path.split("/") if _secretish(seg)}  # not words like "services"
            parts |= {v for _k, v in parse_qsl(split.query) if len(v) >= 6}
            parts |= {split.path, split.query} - {""}
            if split.username or split.password:
                parts.add(split.netloc)
        for p in list(parts):
            if len(p) >= 4:
                parts |= {quote(p, safe=""), quote_plus(p), quote(p)}
        self.values |= {p for p in parts if len(p) >= 4}

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def redactor_from_env(env: Mapping[str, str]) -> Redactor:
    """A redactor knowing every secret variable that is set, whichever channels are used."""
    red = Redactor()
    for name in SECRET_VARS:
        red.add(env.get(name), url=name.endswith("_URL"))
    return red


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first one included
    base: float = 1.0  # seconds before the first retry; doubles each time
    cap: float = 30.0  # longest backoff
    max_wait: float = 120.0  # longest server-requested wait (Retry-After) we honour; longer gives up
    timeout: float = 15.0  # per request

    def backoff(self, retry: int) -> float:
        """Wait before retry number `retry` (1-based): base * 2**(retry-1), capped."""
        return min(self.cap, self.base * 2 ** (retry - 1))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        def num(name: str, default: float, kind: type = float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number (got {raw!r})") from None
            if value < 0 or (kind is int and value < 1):
                raise ConfigError(f"{name} is out of range (got {raw!r})")
            return value

        return cls(int(num("KB_DAILY_RETRY_ATTEMPTS", cls.attempts, int)), num("KB_DAILY_RETRY_BASE", cls.base),
                   num("KB_DAILY_RETRY_CAP", cls.cap), num("KB_DAILY_RETRY_MAX_WAIT", cls.max_wait),
                   num("KB_DAILY_TIMEOUT", cls.timeout) or cls.timeout)


@dataclass(frozen=True)
class Channel:
    """Where to post on one platform: `url` is the webhook (or Telegram's API base)."""

    platform: str
    url: str
    secret: str | None = None
    chat_id: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def destination(self) -> str:
        """A short one-way fingerprint of where this channel posts (safe to store and show)."""
        ident = "\n".join((self.platform, self.url, self.chat_id or "", self.token or ""))
        return hashlib.sha256(ident.encode()).hexdigest()[:12]


def _http_url(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} is not an http(s) URL")
    return value


def channel_from_env(platform: str, env: Mapping[str, str]) -> Channel:
    """The channel configured by the environment; ConfigError naming what is missing."""
    required, _optional = ENV_VARS[platform]
    missing = [name for name in required if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(f"{platform}: set {' and '.join(missing)}")
    if platform == "telegram":
        base = env.get("KB_TELEGRAM_API_BASE", "").strip() or TELEGRAM_API
        if not base.startswith(("http://", "https://")):
            raise ConfigError("KB_TELEGRAM_API_BASE is not an http(s) URL")
        return Channel(platform, base.rstrip("/"), chat_id=env["KB_TELEGRAM_CHAT_ID"].strip(),
                       token=env["KB_TELEGRAM_BOT_TOKEN"].strip())
    url = _http_url(env, required[0])
    secret = env.get(f"KB_{platform.upper()}_SECRET", "").strip() or None
    return Channel(platform, url, secret=secret)


def feishu_sign(timestamp: int, secret: str) -> str:
    """Feishu: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", message=b"")), timestamp in seconds."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, message=f"{timestamp}\\n{secret}")), timestamp in ms.

    Returned un-encoded; it travels URL-encoded in the query string (`prepare` encodes it once).
    """
    msg = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def prepare(channel: Channel, body: dict, now: float) -> tuple[httpx.URL, bytes]:
    """The URL and JSON bytes of one attempt, signed with the current time where the platform asks."""
    url = httpx.URL(channel.url)
    body = dict(body)
    if channel.platform == "feishu" and channel.secret:
        ts = int(now)
        body |= {"timestamp": str(ts), "sign": feishu_sign(ts, channel.secret)}
    elif channel.platform == "dingtalk" and channel.secret:
        ts = int(now * 1000)
        url = url.copy_merge_params({"timestamp": str(ts), "sign": dingtalk_sign(ts, channel.secret)})
    elif channel.platform == "discord":
        url = url.copy_merge_params({"wait": "true"})
    elif channel.platform == "telegram":
        url = httpx.URL(f"{channel.url}/bot{channel.token}/sendMessage")
        body = {"chat_id": channel.chat_id, **body}
    return url, body_bytes(body)


@dataclass(frozen=True)
class Outcome:
    kind: Literal["ok", "retry", "fail"]
    reason: str = ""
    wait: float | None = None  # seconds the platform asked us to wait


def _seconds(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, float(value))
    if isinstance(value, str) and value.strip():
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if "," in value else None
            return max(0.0, when.timestamp() - time.time()) if when else None
    return None


def requested_wait(response: httpx.Response, data: object) -> float | None:
    """The longest wait the response asks for: Retry-After, `retry_after`, `parameters.retry_after`."""
    waits = [_seconds(response.headers.get("retry-after"))]
    if isinstance(data, dict):
        waits.append(_seconds(data.get("retry_after")))
        params = data.get("parameters")
        if isinstance(params, dict):
            waits.append(_seconds(params.get("retry_after")))
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def _hint(platform: str, code: object) -> str:
    hint = HINTS.get((platform, code))
    return f" ({hint})" if hint else ""


def classify(platform: str, response: httpx.Response) -> Outcome:
    """Did the platform accept the message? ok, retry (certainly not delivered) or fail."""
    status = response.status_code
    text = response.text.strip()
    try:
        data = response.json() if text else None
    except ValueError:
        data = None
    short = text[:200]
    if status == 429:
        return Outcome("retry", f"rate limited (HTTP 429){_hint(platform, 429)}", requested_wait(response, data))
    if status >= 500:
        return Outcome("retry", f"server error HTTP {status}")
    if 300 <= status < 400:
        return Outcome("fail", f"unexpected redirect (HTTP {status}); check the URL")
    if platform == "slack":
        if status == 200 and text == "ok":
            return Outcome("ok")
        return Outcome("fail", f"HTTP {status}: {short or 'no body'}{_hint(platform, text)}")
    if platform == "discord":
        if status in (200, 204):
            return Outcome("ok")
        code = data.get("code") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else short
        return Outcome("fail", f"HTTP {status}, code {code}: {message}{_hint(platform, code)}")
    if platform == "telegram":
        if isinstance(data, dict) and data.get("ok") is True:
            return Outcome("ok")
        code = data.get("error_code", status) if isinstance(data, dict) else status
        desc = data.get("description", short) if isinstance(data, dict) else short
        if code == 429:
            return Outcome("retry", f"rate limited: {desc}", requested_wait(response, data))
        return Outcome("fail", f"error {code}: {desc}{_hint(platform, code)}")
    # Feishu, DingTalk, WeCom: HTTP 200 (or 400) with the verdict in the body.
    if not isinstance(data, dict):
        return Outcome("fail", f"HTTP {status}, not a JSON answer: {short or 'no body'}")
    if platform == "feishu":
        code = data.get("code", data.get("StatusCode"))
        message = data.get("msg", data.get("StatusMessage", ""))
    else:
        code, message = data.get("errcode"), data.get("errmsg", "")
    if code == 0 and status == 200:
        return Outcome("ok")
    if code in RATE_LIMIT_CODES.get(platform, set()):
        return Outcome("retry", f"rate limited (code {code}: {message}){_hint(platform, code)}")
    return Outcome("fail", f"HTTP {status}, code {code}: {message}{_hint(platform, code)}")


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    detail: str = ""
    uncertain: bool = False  # the request went out and no answer came: it may have been delivered


CERTAINLY_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def make_client(policy: RetryPolicy) -> httpx.Client:
    """One client for a run: no redirects followed, no connection reuse (a stale pooled
    connection would turn a clean retry into an uncertain failure)."""
    for name in ("httpx", "httpcore"):  # their INFO/DEBUG lines print full URLs
        logging.getLogger(name).setLevel(logging.WARNING)
    return httpx.Client(timeout=policy.timeout, follow_redirects=False,
                        limits=httpx.Limits(max_keepalive_connections=0),
                        headers={"user-agent": "llm-kb-daily"})


def deliver(client: httpx.Client, channel: Channel, body: dict, policy: RetryPolicy, redact: Redactor, *,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> Delivery:
    """Post `body` to `channel`, retrying only what certainly was not delivered."""
    if channel.platform != "telegram":  # Telegram's url is the public API base; its token is the secret
        redact.add(channel.url, url=True)
    for secret in (channel.secret, channel.token, channel.chat_id):
        redact.add(secret)
    headers = {"content-type": "application/json; charset=utf-8"}
    for attempt in range(1, policy.attempts + 1):
        try:
            url, content = prepare(channel, body, clock())
        except (httpx.InvalidURL, ValueError) as exc:
            return Delivery(False, attempt, redact(f"the configured URL is not valid ({exc})"))
        redact.add(str(url), url=True)
        try:
            response = client.post(url, content=content, headers=headers)
        except CERTAINLY_NOT_SENT as exc:
            if isinstance(exc, httpx.UnsupportedProtocol):
                return Delivery(False, attempt, redact(f"cannot post: {exc}"))
            outcome = Outcome("retry", redact(f"cannot connect ({type(exc).__name__}: {exc})"))
        except httpx.HTTPError as exc:
            return Delivery(False, attempt, redact(
                f"the request was sent but no answer came ({type(exc).__name__}: {exc}); it may or may not "
                "have been delivered, so it was not retried and not recorded: check the chat before re-running"),
                uncertain=True)
        else:
            outcome = classify(channel.platform, response)
        if outcome.kind == "ok":
            return Delivery(True, attempt)
        reason = redact(outcome.reason)
        if outcome.kind == "fail":
            return Delivery(False, attempt, f"rejected: {reason}")
        if attempt == policy.attempts:
            return Delivery(False, attempt, f"gave up after {attempt} attempts: {reason}")
        delay = policy.backoff(attempt)
        if outcome.wait is not None:
            if outcome.wait > policy.max_wait:
                return Delivery(False, attempt, f"{reason}; the platform asks to wait {outcome.wait:.0f}s, more than "
                                                f"KB_DAILY_RETRY_MAX_WAIT={policy.max_wait:.0f}s: not retried")
            delay = outcome.wait
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
