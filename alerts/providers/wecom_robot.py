"""A WeCom (企业微信) group robot: posts a text to the group its webhook URL belongs to.

POST <webhook URL>  {"msgtype": "text", "text": {"content": "..."}}
→ {"errcode": 0, "errmsg": "ok"}   (45009: more than 20 posts a minute)
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from alerts.providers.base import ProviderError

MAX_CONTENT_BYTES = 2048
"""The longest text a robot takes (UTF-8)."""
THROTTLED = 45009


class WeComRobot:
    """Posts texts to group robots' webhook URLs (the blocking call runs in a thread)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout

    async def post(self, url: str, text: str) -> None:
        """Post `text` to the group; ProviderError (with WeCom's errcode) if it was not taken."""
        await asyncio.to_thread(self._post, url, text)

    def _post(self, url: str, text: str) -> None:
        content = text.encode()[:MAX_CONTENT_BYTES].decode(errors="ignore")
        body = json.dumps({"msgtype": "text", "text": {"content": content}}, ensure_ascii=False)
        request = urllib.request.Request(url, data=body.encode(), method="POST")  # noqa: S310 - a configured https URL
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            exc.close()
            status = exc.code
            raise ProviderError(f"the robot answered HTTP {status}", code=str(status)) from None
        except (OSError, ValueError) as exc:
            raise ProviderError(
                f"the robot could not be reached: {exc}", code="unreachable"
            ) from None
        code = answer.get("errcode") if isinstance(answer, dict) else None
        if code != 0:
            message = answer.get("errmsg", "") if isinstance(answer, dict) else ""
            raise ProviderError(f"the robot refused: {message}", code=str(code))
