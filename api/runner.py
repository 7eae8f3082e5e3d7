"""`bidao run`: start the gateway, say where it listens, stop cleanly on SIGINT or SIGTERM.

Exit status: 0 after a normal stop; 1 when it could not start, or stopped with a part
failing or after an unexpected error; 2 when the settings are invalid; 130 on Ctrl-C
before start-up got going. Every expected
problem is one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from alerts.providers.base import Provider
from alerts.providers.console import ConsoleProvider
from api.app import http_component
from gateway.application import for_service
from gateway.clock import AcceleratedClock
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.logs import configure_logging
from gateway.runtime.service import GatewayService

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _say(line: str) -> None:
    sys.stderr.write(f"bidao: {line}\n")
    sys.stderr.flush()


def build_provider(settings: Settings) -> Provider:
    """The notification provider the settings name."""
    notify = settings.notify
    if notify.provider == "twilio":
        from alerts.providers.twilio_provider import TwilioProvider

        return TwilioProvider(
            notify.twilio_account_sid,
            notify.twilio_auth_token.get_secret_value(),
            notify.twilio_from,
            notify.public_url,
            notify.twilio_api_base_url,
        )
    if notify.provider == "aliyun":
        domestic = build_aliyun_provider(settings)
        if not notify.twilio_account_sid:
            return domestic
        from alerts.providers.routing import RoutingProvider
        from alerts.providers.twilio_provider import TwilioProvider

        abroad = TwilioProvider(
            notify.twilio_account_sid,
            notify.twilio_auth_token.get_secret_value(),
            notify.twilio_from,
            notify.public_url,
            notify.twilio_api_base_url,
        )
        return RoutingProvider(domestic, abroad)
    return ConsoleProvider()


def build_aliyun_provider(settings: Settings) -> Provider:
    """The Alibaba Cloud provider of the settings (mainland SMS and voice)."""
    from alerts.providers.aliyun_provider import AliyunProvider

    notify = settings.notify
    return AliyunProvider(
        notify.aliyun_access_key_id,
        notify.aliyun_access_key_secret.get_secret_value(),
        notify.aliyun_sign_name,
        notify.aliyun_show_number,
        notify.aliyun_templates,
        sms_endpoint=notify.aliyun_sms_endpoint,
        voice_endpoint=notify.aliyun_voice_endpoint,
        protocol=notify.aliyun_protocol,
    )


def run_gateway(
    config_path: Path | None, *, speed: float = 1.0, speed_from: float | None = None
) -> int:
    """Run the gateway until SIGINT or SIGTERM; returns the process exit status."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        for problem in exc.problems or (str(exc),):
            _say(problem)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    try:
        clock = None if speed == 1.0 else AcceleratedClock(speed, speed_from)
        service = GatewayService(settings, clock, build_provider(settings))
    except GatewayError as exc:
        _say(str(exc))
        return EXIT_CONFIG
    if settings.http.enabled:
        service.add_component("http", http_component(for_service(service)))
    service.keep_heap()  # this process's collector is this command's to set
    try:
        return asyncio.run(_serve(service))
    except KeyboardInterrupt:  # Ctrl-C before the loop's handlers were installed
        return EXIT_INTERRUPTED


async def _serve(service: GatewayService) -> int:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, service.request_stop)
    try:
        async with service:
            sys.stdout.write(service.banner + "\n")
            sys.stdout.flush()
            await service.stopped()
            failing = service.failing_at_stop
    except GatewayError as exc:
        _say(str(exc))
        return EXIT_FAILED
    except Exception as exc:
        log.exception("gateway stopped after an unexpected error")
        _say(f"gateway stopped after an unexpected error: {type(exc).__name__}: {exc}")
        return EXIT_FAILED
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    if failing:
        for part in failing:
            _say(f"stopped while part {part.name} was {part.state}: {part.last_error}")
        return EXIT_FAILED
    return EXIT_OK
