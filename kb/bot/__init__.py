"""The daily interview-question bot: `kb daily` posts the day's question to chat platforms.

Modules: `text` (answers as chat text, cut cleanly), `messages` (each platform's payload and
limits), `transport` (environment configuration, signing, posting with retries, redaction),
`ledger` (what was posted, so a re-run never posts twice), `runner` (one run over all targets).
"""

from kb.bot.ledger import DEFAULT_PATH as DEFAULT_LEDGER
from kb.bot.ledger import LedgerError
from kb.bot.messages import PLATFORMS, LimitError
from kb.bot.runner import ChannelResult, DailyOptions, NoQuestion, parse_targets, run_daily
from kb.bot.transport import ENV_VARS, RETRY_VARS, ConfigError, RetryPolicy

__all__ = [
    "DEFAULT_LEDGER", "ENV_VARS", "PLATFORMS", "RETRY_VARS", "ChannelResult", "ConfigError", "DailyOptions",
    "LedgerError", "LimitError", "NoQuestion", "RetryPolicy", "parse_targets", "run_daily",
]
