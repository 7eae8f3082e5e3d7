"""Errors raised by the gateway.

GatewayError
 ├── ConfigError        settings that cannot work (bad path, bad serial URL, ...)
 ├── StoreError
 │    └── MigrationError  an applied migration was edited, or the schema is newer than the code
 ├── RegistryError       device registration: duplicate id, bad key, unknown device
 └── BrokerError         the embedded mosquitto could not be started
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of the gateway's own errors."""


class ConfigError(GatewayError):
    """Settings that cannot work."""


class StoreError(GatewayError):
    """The store failed or holds something unexpected."""


class MigrationError(StoreError):
    """The schema history does not match the migrations shipped with the code."""


class RegistryError(GatewayError):
    """A device registration request is invalid."""


class BrokerError(GatewayError):
    """The embedded MQTT broker could not be started."""
