"""A fake WeCom (企业微信) group-robot endpoint: records every post, per robot key.

POST /cgi-bin/webhook/send?key=KEY   {"msgtype": "text", "text": {"content": ...}}
→ {"errcode": 0, "errmsg": "ok"}; 93000 for a key it does not know; 45009 over
`per_minute` posts a minute to one robot; 40008 for a message it cannot read
GET  /posts                          every post taken (JSON)
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/cgi-bin/webhook/send"


@dataclass
class Post:
    """One text a group robot posted."""

    key: str
    content: str
    at: float = field(default_factory=time.time)


class FakeWeCom:
    """Group robots on 127.0.0.1 in a thread; a context manager."""

    def __init__(self, keys: Iterable[str], per_minute: int = 20) -> None:
        self.keys = set(keys)
        self.per_minute = per_minute
        self.posts: list[Post] = []
        self.refused: list[int] = []
        self.failures_left = 0
        """The next N posts get HTTP 503, as during an outage."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, key: str) -> str:
        """The webhook URL of one robot."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}?key={key}"

    def posted(self, key: str) -> list[str]:
        """What one robot posted, oldest first."""
        with self._lock:
            return [p.content for p in self.posts if p.key == key]

    def __enter__(self) -> FakeWeCom:
        """Start serving."""
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-wecom", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

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


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWeCom

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the posts are the log."""

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        """A robot's post."""
        split = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        if split.path != PATH:
            self._reply(404, {"errcode": 404, "errmsg": "not found"})
            return
        key = dict(urllib.parse.parse_qsl(split.query)).get("key", "")
        self._reply(*self.fake.take(key, body))

    def do_GET(self) -> None:
        """Every post taken."""
        with self.fake._lock:
            posts = [asdict(p) for p in self.fake.posts]
        self._reply(200, posts)
