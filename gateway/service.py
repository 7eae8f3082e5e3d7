"""The gateway service (it lives in gateway.runtime.service)."""

from gateway.runtime.service import Component, GatewayService

__all__ = ["Component", "GatewayService"]
