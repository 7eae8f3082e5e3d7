"""Signed, expiring links for the one who took a ticket: the link is the credential.

A link names one ticket and one person and carries an expiry time and an HMAC over the
three, so it opens that ticket's page for that person only, until it expires. Nothing is
stored per link; changing the secret revokes every link at once.

    https://example.org/r/17.3.1798000000.Qm9yaW5nU2lnbmF0

The token is `ticket.contact.expires.signature`: plain ASCII, short enough for an SMS.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Settings
from gateway.errors import GatewayError, StartupError

__all__ = [
    "LINK_PATH",
    "LinkError",
    "LinkGrant",
    "ResponderLinks",
    "load_or_create_secret",
    "responder_links",
]

LINK_PATH = "/r/"
"""Where the responder's page is served; the token follows."""
_SIG_BYTES = 12
_TOKEN = re.compile(r"^([1-9][0-9]{0,11})\.([1-9][0-9]{0,11})\.([0-9]{1,12})\.([A-Za-z0-9_-]{16})$")
SECRET_FILE = "link.key"  # noqa: S105 - a file name, not a secret


class LinkError(GatewayError):
    """A link that is malformed, forged or expired; `reason` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid link lets its holder do: act on one ticket as one person until then."""

    ticket_id: int
    contact_id: int
    expires_at: int


class ResponderLinks:
    """Makes and checks the links in the SMS to the one who took a ticket."""

    def __init__(self, secret: bytes, public_url: str, ttl_s: float) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        self._secret = secret
        self._public = public_url.rstrip("/")
        self._ttl_s = ttl_s

    def token(self, ticket_id: int, contact_id: int, now: float) -> str:
        """The token for `contact_id` on `ticket_id`, valid for the configured time from now."""
        expires = int(now + self._ttl_s)
        return f"{ticket_id}.{contact_id}.{expires}.{self._sign(ticket_id, contact_id, expires)}"

    def url(self, ticket_id: int, contact_id: int, now: float) -> str:
        """The full link to put in a message."""
        return self._public + LINK_PATH + self.token(ticket_id, contact_id, now)

    def verify(self, token: str, now: float) -> LinkGrant:
        """The grant a token carries; LinkError if it is malformed, forged or expired."""
        match = _TOKEN.match(token)
        if match is None:
            raise LinkError("malformed", "this link is not a Bidao ticket link")
        ticket_id, contact_id, expires = (int(g) for g in match.groups()[:3])
        expected = self._sign(ticket_id, contact_id, expires)
        if not hmac.compare_digest(expected, match.group(4)):
            raise LinkError("forged", "this link was not made by this gateway")
        if now >= expires:
            raise LinkError("expired", "this link has expired")
        return LinkGrant(ticket_id, contact_id, expires)

    def _sign(self, ticket_id: int, contact_id: int, expires: int) -> str:
        message = f"bidao-link-v1|{ticket_id}|{contact_id}|{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()[:_SIG_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _make_secret(data_dir: Path, path: Path) -> None:
    """Write a new secret whole, owner-only; if another process made one first, keep theirs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".link.key.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # atomic, and never over a secret already in use
    finally:
        Path(temporary).unlink()


def load_or_create_secret(data_dir: Path) -> bytes:
    """The link secret kept in `data_dir`, made (32 random bytes, owner-only) on first use."""
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        _make_secret(data_dir, path)
        text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise GatewayError(f"{path} is not a hex link secret; delete it to make another") from None
    if len(secret) < 16:
        raise GatewayError(f"{path} holds fewer than 16 bytes; delete it to make a new one")
    return secret


def responder_links(settings: Settings) -> ResponderLinks:
    """The signer of responders' links: the configured secret, else the data folder's.

    StartupError if the configured secret is not hex of at least 16 bytes, or the data
    folder's key file cannot be read or made.
    """
    notify = settings.notify
    configured = notify.link_secret.get_secret_value().strip()
    if configured:
        try:
            secret = bytes.fromhex(configured)
        except ValueError:
            raise StartupError("notify.link_secret must be hex (at least 32 digits)") from None
        if len(secret) < 16:
            raise StartupError("notify.link_secret must be at least 16 bytes (32 hex digits)")
    else:
        try:
            secret = load_or_create_secret(settings.data_dir)
        except OSError as exc:
            raise StartupError(
                f"cannot read or make the link key in {settings.data_dir}: {exc.strerror or exc}"
            ) from None
    return ResponderLinks(secret, notify.public_url, notify.link_ttl_s)
