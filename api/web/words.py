"""The dashboard's words in the reader's language: Simplified Chinese unless they chose English.

The page words are in words_zh.py and words_en.py; the ticket vocabulary (statuses, events,
roles, kinds of matter, message templates) is shared with `bidao ticket` (cli_tickets_zh/en)
and the device alarm kinds with `bidao device` (cli_devices_zh/en), so a secretary reads the
same word on the page as the operator at the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from api import cli_devices_en, cli_devices_zh, cli_tickets_en, cli_tickets_zh
from api.web import words_en, words_zh

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


@dataclass(frozen=True, slots=True)
class Words:
    """Every table of one language."""

    lang: Lang

    def __call__(self, key: str, **params: object) -> str:
        """A page word, its placeholders filled; the key itself if it has no word (a bug)."""
        table = words_zh.WORDS if self.lang == "zh" else words_en.WORDS
        text = table.get(key, key)
        return text.format(**params) if params else text

    def _tickets(self, table: str, key: str | None) -> str:
        module = cli_tickets_zh if self.lang == "zh" else cli_tickets_en
        words: dict[str, str] = getattr(module, table)
        return words.get(key or "", key or "-")

    def status(self, key: str) -> str:
        """待接单 / open, ..."""
        return self._tickets("STATUS", key)

    def role(self, key: str | None) -> str:
        """A contact's role: 村书记 / village secretary, ..."""
        return self._tickets("ROLE", key)

    def category(self, key: str | None) -> str:
        """紧急 / urgent, ..."""
        return self._tickets("CATEGORY", key)

    def kind(self, key: str) -> str:
        """呼叫 / call, 无用水报警 / no-water alarm, ..."""
        return self._tickets("KIND", key)

    def outcome(self, key: str | None) -> str:
        """What an alarm turned out to be."""
        return self._tickets("OUTCOME", key) if key else self._tickets("ALARM_LABEL", "unlabelled")

    def event(self, key: str) -> str:
        """A timeline event: 接单 / accepted, ..."""
        return self._tickets("EVENT", key)

    def template(self, key: str) -> str:
        """What a message said: 呼叫上门 / ..."""
        return self._tickets("TEMPLATE", key)

    def delivery(self, key: str) -> str:
        """How a message went."""
        return self._tickets("DELIVERY", key)

    def channel(self, key: str | None) -> str:
        """How someone acted: 呼叫器按键 / the box's key, ..."""
        return self._tickets("ACTION_CHANNEL", key)

    def message_channel(self, key: str) -> str:
        """短信 / SMS, 电话 / call."""
        return self._tickets("MESSAGE_CHANNEL", key)

    def rating(self, key: str | None) -> str:
        """满意 / satisfied, ..."""
        return self._tickets("RATING", key)

    def alarm(self, kind: str) -> str:
        """A device alarm's kind."""
        table = cli_devices_zh.TEXT if self.lang == "zh" else cli_devices_en.TEXT
        return table.get(f"alarm_{kind}", kind)


WORDS = {lang: Words(lang) for lang in LANGS}
