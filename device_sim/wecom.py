"""A fake WeCom (企业微信) group-robot endpoint: records every post, per robot key.

POST /cgi-bin/webhook/send?key=KEY   {"msgtype": "text", "text": {"content": ...}}
→ {"errcode": 0, "errmsg": "ok"}; 93000 for a key it does not know; 45009 over
`per_minute` posts a minute to one robot; 40008 for a message it cannot read
GET  /posts                          every post taken (JSON)
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from device_sim.fake_http import FakeHandler, FakeService

PATH = "/cgi-bin/webhook/send"


@dataclass
class Post:
    """One text a group robot posted."""

    key: str
    content: str
    at: float = field(default_factory=time.time)


class FakeWeCom(FakeService):
    """Group robots on 127.0.0.1 in a thread; start() and stop(), or a context manager."""

    _thread_name = "fake-wecom"

    def __init__(self, keys: Iterable[str], per_minute: int = 20) -> None:
        super().__init__()
        self.keys = set(keys)
        self.per_minute = per_minute
        self.posts: list[Post] = []
        self.refused: list[int] = []
        self.failures_left = 0
        """The next N posts get HTTP 503, as during an outage."""

    def _handler(self) -> type[FakeHandler]:
        return _Handler

    def url(self, key: str) -> str:
        """The webhook URL of one robot."""
        return f"{self.base_url}{PATH}?key={key}"

    def posted(self, key: str) -> list[str]:
        """What one robot posted, oldest first."""
        with self._lock:
            return [p.content for p in self.posts if p.key == key]

    def take(self, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one post as WeCom does: (HTTP status, JSON answer)."""
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return 503, {"errcode": -1, "errmsg": "system busy"}
        try:
            message = json.loads(body)
            content = message["text"]["content"]
            if message.get("msgtype") != "text" or not isinstance(content, str):
                raise ValueError("not a text message")  # noqa: TRY301 - one refusal below
        except (ValueError, KeyError, TypeError):
            return self._refuse(40008, "invalid message type")
        if key not in self.keys:
            return self._refuse(93000, "invalid webhook url")
        with self._lock:
            recent = [p for p in self.posts if p.key == key and p.at > time.time() - 60]
            if len(recent) >= self.per_minute:
                self.refused.append(45009)
                return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
            self.posts.append(Post(key, content))
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _refuse(self, code: int, message: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.refused.append(code)
        return 200, {"errcode": code, "errmsg": message}


class _Handler(FakeHandler):
    fake: FakeWeCom

    def on_post(self) -> None:
        """A robot's post."""
        split = urllib.parse.urlsplit(self.path)
        body = self._body()
        if split.path != PATH:
            self._reply(404, {"errcode": 404, "errmsg": "not found"})
            return
        key = dict(urllib.parse.parse_qsl(split.query)).get("key", "")
        self._reply(*self.fake.take(key, body))

    def on_get(self) -> None:
        """Every post taken."""
        with self.fake._lock:
            posts = [asdict(p) for p in self.fake.posts]
        self._reply(200, posts)
