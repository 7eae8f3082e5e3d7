"""Structured logging with phone numbers and keys masked before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import Counter
from typing import Any, ClassVar

_PHONE = re.compile(r"(?<![0-9A-Za-z])(\+?\d{1,3}[ -]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_E164 = re.compile(r"(?<![0-9A-Za-z])\+(\d{1,3})\d{4,}(\d{2})(?!\d)")
_HEX_SECRET = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])")


def mask(text: str) -> str:
    """`text` with mobile numbers reduced to their first 3 and last 4 digits and keys hidden."""
    text = _HEX_SECRET.sub("<key>", text)
    text = _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
    return _E164.sub(lambda m: f"+{m.group(1)}****{m.group(2)}", text)


class MaskingJsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `extra` fields."""

    _RESERVED: ClassVar[frozenset[str]] = frozenset(
        logging.LogRecord("", 0, "", 0, "", None, None).__dict__
    ) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as masked JSON."""
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return mask(json.dumps(out, ensure_ascii=False))


class MaskingTextFormatter(logging.Formatter):
    """Plain text for a terminal, masked the same way."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as masked text."""
        return mask(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send all logs to stderr through a masking formatter."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(MaskingJsonFormatter())
    else:
        handler.setFormatter(
            MaskingTextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The twilio library logs every request's headers at INFO: eleven lines per message.
    logging.getLogger("twilio.http_client").setLevel(max(root.level, logging.WARNING))


class RateLimitedLog:
    """Logs a message once per key per interval, and at most `max_lines` lines per interval.

    Per key: repeats within the interval are not written; the next line says how many were
    held back. In all: past `max_lines` lines in one interval (a flood of forged device ids,
    each a key of its own) nothing more is written; those are counted by the key's last part
    (the reason), and the first call of a later interval writes one summary line with the
    counts. So the log grows by at most `max_lines + 1` lines per interval, whatever comes.
    """

    def __init__(self, logger: logging.Logger, interval_s: float, max_lines: int = 20) -> None:
        self._logger = logger
        self._interval = interval_s
        self._max_lines = max_lines
        self._last: dict[tuple[str, ...], tuple[float, int]] = {}
        self._window_at = float("-inf")
        self._lines = 0
        self._held: Counter[str] = Counter()

    def warning(self, key: tuple[str, ...], now: float, msg: str, **fields: Any) -> None:
        """Log `msg` unless `key` was logged within the interval or the budget is spent."""
        self._roll(now)
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < self._interval:
            self._last[key] = (last, suppressed + 1)
            return
        if self._lines >= self._max_lines:
            self._held[key[-1] if key else "-"] += 1
            return
        self._lines += 1
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = (now, 0)
        self._logger.warning(msg, extra={**fields, "suppressed_since_last": suppressed})

    def _roll(self, now: float) -> None:
        """Start a new interval if this one is over, first writing what it held back."""
        if now - self._window_at < self._interval:
            return
        if self._held:
            self._logger.warning(
                "log lines held back: more than the budget per interval",
                extra={
                    "held_back": sum(self._held.values()),
                    "by_reason": ",".join(f"{k}={v}" for k, v in sorted(self._held.items())),
                    "budget": self._max_lines,
                    "interval_s": self._interval,
                },
            )
            self._held.clear()
        self._window_at = now
        self._lines = 0
