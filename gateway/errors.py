"""Errors raised by the gateway.

GatewayError
 ├── ConfigError        settings that cannot work (unknown key, bad path, missing credentials)
 ├── StartupError       the gateway cannot start: data folder in use, port taken, broker away
 ├── StoreError            the store failed; no driver error ever leaves a store
 │    ├── StoreUnavailableError  locked, busy, disk full or I/O error: may work if retried
 │    ├── StoreCorruptError      the file is not a database, or a damaged one
 │    ├── ConflictError          a write conflicts with stored rows (a unique key, a reference)
 │    └── MigrationError         an applied migration was edited, or the schema is newer
 ├── RegistryError       device registration: duplicate id, bad key, unknown device
 └── BrokerError         the embedded mosquitto could not be started
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of the gateway's own errors."""


class ConfigError(GatewayError):
    """Settings that cannot work; `problems` has one readable line per bad setting."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StartupError(GatewayError):
    """Something the gateway needs to run cannot be had; nothing was left running."""


class StoreError(GatewayError):
    """The store failed or holds something unexpected."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or written now (locked, busy, full, I/O); retry later."""


class StoreCorruptError(StoreError):
    """The store's file is not a database, or a damaged one."""


class ConflictError(StoreError):
    """A write conflicts with stored rows: a unique key or a reference."""


class MigrationError(StoreError):
    """The schema history does not match the migrations shipped with the code."""


class RegistryError(GatewayError):
    """A device registration request is invalid."""


class BrokerError(GatewayError):
    """The embedded MQTT broker could not be started."""
