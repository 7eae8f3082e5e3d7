"""The MQTT broker password a box derives from its device key (docs/protocol.md section 7.1).

A box is given one secret when it is installed: its device key. Its broker password is not
a second secret to provision and keep in step; box and gateway both compute it:

    password = lowercase hex of HMAC-SHA256(key, "bidao/v2 mqtt password")[:16]

(32 hex characters, 128 bits). The gateway writes the broker's password file from the keys
it holds (`bidao broker-credentials`), so a key rotation also rotates the broker password.
"""

from __future__ import annotations

import hashlib
import hmac

from firmware_protocol.errors import InvalidKeyError
from firmware_protocol.frame import KEY_LEN

BROKER_PASSWORD_LABEL = b"bidao/v2 mqtt password"
BROKER_PASSWORD_BYTES = 16


def broker_password(key: bytes) -> str:
    """The broker password of the box holding `key` (32 lowercase hex characters)."""
    if len(key) != KEY_LEN:
        raise InvalidKeyError(f"device key must be {KEY_LEN} bytes, got {len(key)}")
    digest = hmac.new(key, BROKER_PASSWORD_LABEL, hashlib.sha256).digest()
    return digest[:BROKER_PASSWORD_BYTES].hex()
