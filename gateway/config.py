"""Gateway settings: embedded defaults, then a TOML file, then BIDAO_* environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from firmware_protocol.indications import ARE_YOU_OK_ANSWER_S, ARE_YOU_OK_PROMPTS
from gateway.domain.devices import DeviceKind as DeviceKind  # noqa: PLC0414 - re-exported
from gateway.domain.devices import HealthKind
from gateway.domain.grid import Role as Role  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import (
    FAMILY_EVENTS,
    Category,
    FamilyEvent,
    ResponderRole,
    TicketRules,
)
from gateway.domain.water import WaterRuleError, WaterRules
from gateway.errors import ConfigError


class MqttSettings(BaseModel):
    """The MQTT link to the broker."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    embedded_broker: bool = True
    """Start a managed mosquitto (persistence and queue limits set by Bidao) on host:port."""
    host: str = "127.0.0.1"
    port: int = Field(default=18830, ge=1, le=65535)
    client_id: str = "bidao-gateway"
    username: str = ""
    """Broker user of the intake connection (empty: connect without credentials). The
    downlink connection connects as `<username>-down`: a broker that takes the username as
    the client id (compose's mosquitto does) must see two different users. Both users are
    written by `bidao broker-credentials`."""
    password: SecretStr = SecretStr("")
    """Password of both broker users (BIDAO_MQTT__PASSWORD)."""
    keepalive_s: int = Field(default=30, ge=5)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    """How long the broker keeps the gateway's session and queued frames while it is away."""
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    """Unacknowledged QoS 1 frames the broker may have in flight to the gateway; also the
    link's credit: reading pauses once this many frames wait in the pipeline."""
    connect_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> MqttSettings:
        """A password without a user would be sent to nobody; a user without one is refused."""
        if bool(self.username) != bool(self.password.get_secret_value()):
            raise ValueError("mqtt.username and mqtt.password go together: set both or neither")
        return self

    def user_of(self, role: str) -> str:
        """The broker user of the intake ("mqtt") or downlink ("mqtt_downlink") connection."""
        return self.username if role == "mqtt" else f"{self.username}-down"


class BrokerSettings(BaseModel):
    """Queue and persistence limits written into every mosquitto config Bidao starts."""

    model_config = ConfigDict(extra="forbid")

    max_queued_messages: int = Field(default=1_000_000, ge=1000)
    """Per-client queue; mosquitto's default of 1000 silently drops frames for a slow gateway."""
    max_queued_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    max_inflight_messages: int = Field(default=1000, ge=1)
    autosave_interval_s: int = Field(default=30, ge=1)
    persistent_client_expiration: str = "14d"


class SerialLinkSettings(BaseModel):
    """One serial line (RS-485/UART concentrator), opened from a pyserial URL."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    url: str
    """A device path (/dev/ttyUSB0), a pty, or socket://127.0.0.1:PORT."""
    baudrate: int = 115200
    credit: int = Field(default=200, ge=1)
    """Frames of this line that may wait in the pipeline; reading pauses beyond it."""
    reopen_initial_s: float = Field(default=0.5, gt=0)
    reopen_max_s: float = Field(default=30.0, gt=0)


class PipelineSettings(BaseModel):
    """Ingest: batching, replay protection, back-pressure."""

    model_config = ConfigDict(extra="forbid")

    batch_max: int = Field(default=500, ge=1)
    """Telemetry frames (heartbeats, readings) committed together at most."""
    batch_linger_s: float = Field(default=0.002, ge=0)
    """How long the first telemetry frame of a batch waits for company before the commit."""
    urgent_batch_max: int = Field(default=16, ge=1)
    """Key events and alarms committed together at most; they never wait for company."""
    urgent_burst: int = Field(default=4, ge=1)
    """Urgent batches in a row while telemetry waits before one telemetry batch goes first
    (the type byte that picks the urgent lane is not authenticated yet)."""
    queue_max: int = Field(default=20_000, ge=1)
    """Frames waiting for the pipeline; the links' credits together may not exceed it."""
    replay_window: int = Field(default=4096, ge=1)
    """A frame of the device's newest session at most this far below its newest accepted seq,
    and not stored, is accepted late; one further below (or of an older session) is answered
    NACK_RESYNC (docs/protocol.md section 6)."""
    clock_drift_max_s: float = Field(default=120.0, gt=0)
    """A frame whose timestamp is 0 or this far from the gateway's clock gets a CONFIG with
    the time after its ACK."""
    clock_resend_s: float = Field(default=300.0, ge=0)
    """At most one automatic clock CONFIG per device this often."""
    reject_log_interval_s: float = Field(default=60.0, ge=0)
    unknown_device_cache_s: float = Field(default=30.0, ge=0)
    commit_retry_initial_s: float = Field(default=0.1, gt=0)
    commit_retry_max_s: float = Field(default=5.0, gt=0)
    drain_timeout_s: float = Field(default=5.0, gt=0)
    last_seen_flush_s: float = Field(default=3600.0, ge=0)
    """A device row's last contact is rewritten once it is this much older than the frame
    (0: on every frame). The exact newest seq and link come from the events on load."""


class ImportSettings(BaseModel):
    """Grid import: how much of a file one write transaction holds the store for."""

    chunk_rows: int = Field(default=250, ge=1)
    """Rows (a household with its resident and box is one) written per transaction."""


def _default_health_holdoffs() -> dict[HealthKind, float]:
    # Offline is declared after three missed intervals already; an hour more tells a power
    # cut or a router restart apart from a box that needs a visit. A case opened is told
    # within a minute; a power cut lasting ten minutes is told.
    return {"offline": 3600.0, "low_battery": 3600.0, "tamper": 60.0, "power_loss": 600.0}


def _default_intervals() -> dict[DeviceKind, int]:
    # A dead box is noticed within about 3 minutes (EN 50136 supervision class).
    return {"call_box": 60, "water_meter": 900}


class SupervisionSettings(BaseModel):
    """Device liveness and battery."""

    model_config = ConfigDict(extra="forbid")

    missed_intervals: int = Field(default=3, ge=1)
    heartbeat_interval_s: dict[DeviceKind, int] = Field(default_factory=_default_intervals)
    """Default reporting interval per device kind until the device states its own."""
    low_battery_pct: int = Field(default=20, ge=0, le=100)
    scheduler_batch: int = Field(default=500, ge=1)
    """Deadlines per transaction; also offline transitions per transaction."""
    battery_band_pct: int = Field(default=10, ge=1, le=100)
    """A device row's battery figures are rewritten only when the battery moves to another
    band of this many percent (or crosses the low-battery line)."""
    rssi_band_db: int = Field(default=10, ge=1)
    """A device row's signal figure is rewritten only when it moves to another band."""
    offline_notify_after_s: float = Field(default=86_400.0, gt=0)
    """A call box silent this long (counted while the gateway listens): its family and grid
    worker get an SMS, once per offline spell, and another when it reports again."""
    changes_poll_s: float = Field(default=2.0, gt=0)
    """How often the running gateway looks for device changes made by another process
    (`bidao device attach|move|replace|remove`): the bound on how late it sees them."""
    alarm_renotify_s: float = Field(default=600.0, ge=0)
    """An open operator alarm that repeats (the same box pressed again) texts the township
    duty again only after this long; every repeat is counted on the alarm."""
    health_raise_after_s: dict[HealthKind, float] = Field(default_factory=_default_health_holdoffs)
    """A device health condition (offline, low battery, tamper, power loss) is told to the
    installers of the household's area (and, for the box of a resident living alone, to the
    family) once it has lasted this long without a break; a shorter spell is told to nobody.
    Offline counts from the offline transition (itself `missed_intervals` after the last
    frame) and never from before the gateway's start."""
    health_clear_after_s: float = Field(default=900.0, ge=0)
    """The all-clear goes to those told once the condition has stayed away this long; if it
    comes back meanwhile the spell goes on and nobody is told again (a flapping device)."""
    battery_ok_margin_pct: int = Field(default=5, ge=0, le=100)
    """A heartbeat ends a low-battery spell only at `low_battery_pct` plus this margin, so a
    battery hovering at the line does not flap between low and ok."""


def _day_clocks() -> dict[Category, float]:
    # Zoucheng: small matters within 2 hours; Shaoshan "0211": ordinary within 2 days,
    # hard within a week, complex ones report progress within a month.
    return {"urgent": 2 * 3600, "ordinary": 2 * 86400, "hard": 7 * 86400, "complex": 30 * 86400}


def _roles(*roles: ResponderRole) -> list[ResponderRole]:
    return list(roles)


def _yeji_responders() -> list[ResponderRole]:
    # Yeji: the village secretary first; then the deputy, the grid worker, the township.
    return _roles("village_secretary", "deputy_secretary", "grid_worker", "township_duty")


def _bozhou_day_chain() -> list[ResponderRole]:
    # Bozhou: neighbour chief, then group leader, area chief, township.
    return _roles("neighbour_chief", "group_leader", "area_chief", "township_duty")


class TicketPolicy(BaseModel):
    """Who is called, in which order, and how long each may take (defaults follow Yeji)."""

    model_config = ConfigDict(extra="forbid")

    responder_chain: list[ResponderRole] = Field(default_factory=_yeji_responders, min_length=1)
    """Called in turn when nobody accepts in time; the first is called again once."""
    informed_at_open: list[ResponderRole] = Field(default_factory=lambda: _roles("neighbour_chief"))
    day_chain: list[ResponderRole] = Field(default_factory=_bozhou_day_chain, min_length=1)
    """Who is told, one level further each time a classified matter misses its deadline."""
    review_role: ResponderRole = "township_duty"
    """Told when a resident presses thumbs-down."""
    accept_within_s: float = Field(default=300.0, gt=0)
    arrive_within_s: float = Field(default=1800.0, gt=0)
    renotify_gap_s: float = Field(default=120.0, ge=0)
    """Repeated green presses re-notify at most this often."""
    red_cancel_window_s: float = Field(default=60.0, ge=0)
    rating_window_s: float = Field(default=72 * 3600.0, gt=0)
    day_clock_s: dict[Category, float] = Field(default_factory=_day_clocks)
    access_roles: list[ResponderRole] = Field(
        default_factory=lambda: _roles("village_secretary", "deputy_secretary", "grid_worker")
    )
    """Who, having accepted, is sent the key-safe code and health notes (with the resident's
    consent). Nobody else ever sees them in a message."""
    new_call_after_on_site_s: float = Field(default=2 * 3600.0, gt=0)
    """A green press this long after the helper arrived opens a new ticket; sooner, it is
    more of the same call and the helper is told (see gateway.domain.tickets)."""
    family_events: list[FamilyEvent] = Field(default_factory=lambda: list(FAMILY_EVENTS))
    """What a household's family members are told, unless a contact chose otherwise (the
    contacts file's `notify` column): when their elder calls, who accepted (with their
    phone), when they arrived, when it was resolved. Never key-safe codes or health notes."""

    def rules(self) -> TicketRules:
        """The policy as fixed onto a ticket when it opens."""
        return TicketRules(
            responder_chain=tuple(self.responder_chain),
            informed_at_open=tuple(self.informed_at_open),
            day_chain=tuple(self.day_chain),
            review_role=self.review_role,
            access_roles=tuple(self.access_roles),
            accept_within_s=self.accept_within_s,
            arrive_within_s=self.arrive_within_s,
            renotify_gap_s=self.renotify_gap_s,
            red_cancel_window_s=self.red_cancel_window_s,
            rating_window_s=self.rating_window_s,
            day_clock_s=dict(self.day_clock_s),
        )


class TicketSettings(BaseModel):
    """The default policy and per-village overrides, by village code."""

    model_config = ConfigDict(extra="forbid")

    default: TicketPolicy = TicketPolicy()
    villages: dict[str, TicketPolicy] = Field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    """Contacts' availability hours are in this zone."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    def policy_for(self, village_code: str | None) -> TicketPolicy:
        """The policy of a village (the default if it has none of its own)."""
        return self.villages.get(village_code or "", self.default)

    def rules_for(self, village_code: str | None) -> TicketRules:
        """The rules a ticket opened now in the village is held to for its whole life."""
        return self.policy_for(village_code).rules()


class WarningThresholds(BaseModel):
    """When a unit changes colour on the map (Bozhou): counts and ages of live tickets."""

    model_config = ConfigDict(extra="forbid")

    yellow_open: int = Field(default=3, ge=1)
    yellow_overdue: int = Field(default=1, ge=1)
    orange_overdue: int = Field(default=3, ge=1)
    red_overdue: int = Field(default=5, ge=1)
    red_oldest_s: float = Field(default=7 * 86400, gt=0)
    """Any live ticket older than this turns its units red."""


class CardThresholds(BaseModel):
    """Performance cards for neighbour chiefs (Shaoshan): on-time share for blue and yellow."""

    model_config = ConfigDict(extra="forbid")

    blue_on_time: float = Field(default=0.9, ge=0, le=1)
    yellow_on_time: float = Field(default=0.7, ge=0, le=1)


class CarrierLimit(BaseModel):
    """At most `count` messages on `channel` to one number within `window_s`.

    A provider's or carrier's limit (mainland SMS: typically 1 a minute, 5 an hour, 10 a day).
    """

    model_config = ConfigDict(extra="forbid")

    channel: Literal["sms", "voice"] = "sms"
    window_s: float = Field(gt=0)
    count: int = Field(ge=1)


class WorkGroupSettings(BaseModel):
    """WeCom (企业微信) group robots that follow each ticket's progress, by grid unit."""

    model_config = ConfigDict(extra="forbid")

    groups: dict[str, str] = Field(default_factory=dict)
    """A unit's code (a village, or a township for all its villages) → its group robot's
    webhook URL (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...); the nearest
    unit of a ticket's household with a group gets the posts."""
    poll_s: float = Field(default=5.0, gt=0)
    """Look for new ticket progress this often."""
    timeout_s: float = Field(default=10.0, gt=0)
    batch: int = Field(default=50, ge=1)


class NotifySettings(BaseModel):
    """The outbox sender and its provider."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["console", "twilio", "aliyun"] = "console"
    public_url: str = "http://127.0.0.1:8080"
    """Where providers reach Bidao's webhooks (behind a reverse proxy: its public URL)."""
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from: str = ""
    twilio_api_base_url: str | None = None
    """Only for tests and demos: the fake phone network's loopback URL."""
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: SecretStr = SecretStr("")
    aliyun_sign_name: str = ""
    """The registered SMS signature (签名), without 【】."""
    aliyun_show_number: str = ""
    """The number calls show (CalledShowNumber): one bought with the voice service."""
    aliyun_templates: dict[str, str] = Field(default_factory=dict)
    """Each carrier template's approved code, by name (`bidao templates export` lists them):
    `"sms.ticket_call" = "SMS_123456789"`, `"tts.ticket_call" = "TTS_123456789"`, ..."""
    aliyun_receipt_token: SecretStr = SecretStr("")
    """The secret part of the receipt URLs configured at the provider (its HTTP push is not
    signed): `<public_url>/webhooks/aliyun/<token>/sms-report` and `.../voice-report`."""
    aliyun_sms_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_voice_endpoint: str = "dyvmsapi.aliyuncs.com"
    aliyun_protocol: Literal["https", "http"] = "https"
    """"http" only for the fake endpoint on loopback in tests and demos."""
    batch: int = Field(default=50, ge=1)
    send_timeout_s: float = Field(default=15.0, gt=0)
    retry_initial_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    """Attempts (sends and in-doubt lookups) before a notification is quarantined."""
    concurrency: int = Field(default=8, ge=1)
    """Sends in flight at once through the provider; never more than one per number."""
    urgent_concurrency: int = Field(default=4, ge=1)
    """Sends of urgent notifications (calls for help) in flight at once, beside
    `concurrency`: claimed as soon as they commit, never behind a slow normal send."""
    degraded_after_failures: int = Field(default=3, ge=1)
    """This many failed attempts in a row and the outbox reports itself degraded."""
    degraded_window_s: float = Field(default=900.0, gt=0)
    """A quarantine within this window also reports the outbox degraded."""
    in_doubt_resend_s: float = Field(default=120.0, ge=0)
    """A message that may have been handed over (crash, timeout) is first looked up at the
    provider; where the provider cannot tell, it waits this long for its status callback
    before it is sent again."""
    throttle_per_window: int = Field(default=6, ge=1)
    """Messages per number and channel within `throttle_window_s`; more are held back and
    merged. Urgent ones (a call for help) always go at once but count towards it."""
    throttle_window_s: float = Field(default=3600.0, gt=0)
    identical_text_window_s: float = Field(default=0.0, ge=0)
    """Carriers block the same text sent to one number again within a while: a normal
    message identical to one sent to its number within this window waits until it is over
    (0: no such rule)."""
    carrier_limits: list[CarrierLimit] = Field(default_factory=list)
    """Limits per number the provider or carriers enforce (a number sent more is blocked):
    normal messages over any of them wait until it allows one more; urgent ones go at once."""
    call_retry_after_s: float = Field(default=60.0, ge=0)
    """An unanswered call (no keypress) is placed once more after this long."""
    bridge_to_resident: bool = True
    """After a responder accepts by keypress, connect the call to the resident's phone."""
    link_secret: SecretStr = SecretStr("")
    """Signs the links in the SMS to the one who took a ticket (hex, at least 16 bytes).
    Empty: a random secret kept in <data_dir>/link.key, made on first start."""
    link_ttl_s: float = Field(default=14 * 86400.0, gt=0)
    """How long such a link keeps working after the message is sent."""
    poll_s: float = Field(default=5.0, gt=0)
    """Look for notifications committed by another process (the command line) this often."""

    @model_validator(mode="after")
    def _provider_credentials(self) -> NotifySettings:
        """A real provider without its credentials would send nothing and trust any webhook."""
        if self.provider == "twilio":
            missing = [
                f"notify.{name}"
                for name, value in (
                    ("twilio_account_sid", self.twilio_account_sid),
                    ("twilio_auth_token", self.twilio_auth_token.get_secret_value()),
                    ("twilio_from", self.twilio_from),
                    ("public_url", self.public_url),
                )
                if not value.strip()
            ]
            if missing:
                raise ValueError(f"provider 'twilio' needs {', '.join(missing)}")
        if self.provider == "aliyun":
            self._aliyun_complete()
            if self.twilio_account_sid and not (
                self.twilio_auth_token.get_secret_value() and self.twilio_from
            ):
                raise ValueError(
                    "numbers abroad go through Twilio when notify.twilio_account_sid is set: "
                    "it needs notify.twilio_auth_token and notify.twilio_from too"
                )
        return self

    def _aliyun_complete(self) -> None:
        """Credentials, signature, show number, receipt token and every template's code."""
        from alerts.carrier_templates import carrier_templates

        missing = [
            f"notify.{name}"
            for name, value in (
                ("aliyun_access_key_id", self.aliyun_access_key_id),
                ("aliyun_access_key_secret", self.aliyun_access_key_secret.get_secret_value()),
                ("aliyun_sign_name", self.aliyun_sign_name),
                ("aliyun_show_number", self.aliyun_show_number),
                ("aliyun_receipt_token", self.aliyun_receipt_token.get_secret_value()),
                ("public_url", self.public_url),
            )
            if not value.strip()
        ]
        if missing:
            raise ValueError(f"provider 'aliyun' needs {', '.join(missing)}")
        names = [t.name for t in carrier_templates()]
        unset = [name for name in names if not self.aliyun_templates.get(name, "").strip()]
        if unset:
            shown = ", ".join(unset[:5]) + (f" and {len(unset) - 5} more" if len(unset) > 5 else "")
            raise ValueError(
                f"provider 'aliyun' has no approved template code for {shown} "
                "(notify.aliyun_templates; `bidao templates export` lists them all)"
            )
        unknown = sorted(set(self.aliyun_templates) - set(names))
        if unknown:
            raise ValueError(f"notify.aliyun_templates names no template: {', '.join(unknown)}")


class IndicationSettings(BaseModel):
    """Box indications: durable rows, retried while the box cannot be reached."""

    poll_s: float = Field(default=5.0, gt=0)
    """Look for indications committed by another process (the command line) this often."""

    batch: int = Field(default=200, ge=1)
    retry_initial_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    """A box that is not heard from is tried at most this rarely; hearing it retries at once."""


class HttpSettings(BaseModel):
    """The HTTP server for webhooks (and, later, the REST API and dashboard)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0)
    """How long a browser sign-in lasts; then the person signs in again."""
    session_cookie: str = "bidao_session"
    cookie_secure: bool = False
    """Send the session cookie over HTTPS only (set it behind a TLS proxy)."""
    signin_window_s: float = Field(default=900.0, gt=0)
    """Failed sign-ins are counted over this window (per login and per client address)."""
    signin_max_failures_per_login: int = Field(default=5, ge=1)
    signin_max_failures_per_address: int = Field(default=20, ge=1)
    password_time_cost: int = Field(default=3, ge=1)
    """argon2id passes (the OWASP minimum settings by default)."""
    password_memory_kib: int = Field(default=65536, ge=8)
    """argon2id memory per hash, in KiB."""
    page_max: int = Field(default=500, ge=1)
    """The largest page any API list returns."""
    dashboard_poll_s: float = Field(default=0.25, gt=0, le=60)
    """How often one server task looks whether tickets or alarms changed, to tell every open
    dashboard at once (the delay before a new call appears on the screens)."""


class RuntimeSettings(BaseModel):
    """Supervision of the gateway's own parts, deadline quarantine, health and loop lag."""

    model_config = ConfigDict(extra="forbid")

    restart_initial_s: float = Field(default=0.5, gt=0)
    """A part that raised is restarted after this long, doubling up to `restart_max_s`."""
    restart_max_s: float = Field(default=30.0, gt=0)
    failed_after: int = Field(default=5, ge=1)
    """Consecutive failures after which a part is reported failed (it keeps being restarted)."""
    stable_after_s: float = Field(default=60.0, gt=0)
    """A part that ran this long before it raised starts its backoff afresh."""
    deadline_max_attempts: int = Field(default=5, ge=1)
    """A deadline whose handler raised this many times is quarantined (marked failed)."""
    deadline_retry_s: float = Field(default=5.0, gt=0)
    """A deadline whose handler raised is tried again after this long, doubling each time."""
    deadline_poll_s: float = Field(default=5.0, gt=0)
    """Look for deadlines set by another process (the command line) this often."""
    store_probe_timeout_s: float = Field(default=2.0, gt=0)
    """/healthz reports the store failing when a write transaction cannot begin within this."""
    loop_lag_interval_s: float = Field(default=0.25, gt=0)
    """How often the event loop's lateness is measured."""
    loop_lag_window_s: float = Field(default=60.0, gt=0)
    """/healthz reports the worst lag seen within this window."""
    link_alarm_after_s: float = Field(default=600.0, gt=0)
    """The MQTT broker link or a serial line down this long raises one operator alarm
    (`bidao alarms`) for that link, cleared when it is back. An outage this long also
    restarts the water watch's quiet clocks when it ends; device silence clocks restart from
    the link's return after any outage."""

    gc_thresholds: tuple[int, int, int] = (20_000, 50, 10)
    """`bidao run`: the collector's thresholds (`gc.set_threshold`); Python's are 700, 10, 10.
    See gateway.runtime.heap."""
    gc_freeze_interval_s: float = Field(default=10.0, ge=0)
    """`bidao run`: this often, collect and freeze what survives, so that the collector's
    passes walk only what is new (0: never freeze). Each pass walks what was made since the
    last: just after a restart, when a county's devices are first heard, 30 s of them took
    0.35-0.38 s (see gateway.runtime.heap)."""
    gc_thaw_interval_s: float = Field(default=86_400.0, ge=0)
    """`bidao run`: this often, unfreeze everything and walk it all once, freeing garbage
    cycles that were frozen (one long pause; 0: never)."""

    @field_validator("gc_thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value) < 1:
            raise ValueError("every collector threshold must be at least 1")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> RuntimeSettings:
        if self.restart_max_s < self.restart_initial_s:
            raise ValueError("restart_max_s must be at least restart_initial_s")
        return self


class WaterWatchSettings(BaseModel):
    """The water watch for residents living alone (issue 13; see gateway.domain.water)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    active_from: str = Field(default="06:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """Quiet is counted only from this local time (in `tickets.timezone`)..."""
    active_until: str = Field(default="22:00", pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
    """...until this one: a night's sleep never raises an alarm."""
    window_s: float = Field(default=8 * 3600.0, ge=6 * 3600.0)
    """Quiet active seconds before the resident is asked, until a routine is learned."""
    min_window_s: float = Field(default=6 * 3600.0, ge=6 * 3600.0)
    max_window_s: float = Field(default=11 * 3600.0, gt=0)
    """At most 11 h, so that with the answer time an incapacitation is raised within 12
    active hours."""
    learn: bool = True
    learn_days: int = Field(default=28, ge=1)
    learn_min_days: int = Field(default=14, ge=1)
    learn_rank: int = Field(default=2, ge=1)
    """The window is the rank-th longest daily quiet stretch of the learned days..."""
    learn_margin_s: float = Field(default=2 * 3600.0, ge=0)
    """...plus this margin."""
    morning_check: bool = False
    """With a learned routine, also ask when no water has been used by the household's usual
    first-use time plus `morning_margin_s`: a fall in the evening or the night is then found
    in the morning rather than once the window's active hours have passed. Off by default:
    `python -m bench.water_watch` shows what it gains and costs."""
    morning_margin_s: float = Field(default=1.5 * 3600.0, ge=0)
    ask_first: bool = True
    answer_window_s: float = Field(default=float(ARE_YOU_OK_ANSWER_S), gt=0)
    """Thumbs-up within this long after "are you OK?" cancels the alarm (default: the box's
    table, ten minutes; the ticket service takes a thumbs-up as the answer for as long).
    One of the windows the box's table has a prompt for (ARE_YOU_OK_PROMPTS: 300, 600, 900,
    1200 or 1800 s), so that its amber light lasts exactly as long."""
    use_threshold_l: float = Field(default=1.0, gt=0)
    backflow_tolerance_l: float = Field(default=5.0, ge=0)
    max_flow_l_per_s: float = Field(default=1.0, gt=0)
    jump_slack_l: float = Field(default=50.0, ge=0)
    max_reading_gap_s: float = Field(default=2700.0, gt=0)
    continuous_flow_s: float = Field(default=2 * 3600.0, gt=0)
    away_reminder_after_s: float = Field(default=2 * 3600.0, ge=0)
    away_settle_s: float = Field(default=3600.0, ge=0)
    """Water this soon after away mode is set is the leaving, not the return."""
    away_by_phone_s: float = Field(default=3 * 24 * 3600.0, gt=0)
    """Pressing 2 ("not at home") on the "are you OK?" call marks the home away this long;
    the call says how long, from this setting (the box's long thumbs-up has its own fixed
    24 h, which its recorded words say)."""
    requests_poll_s: float = Field(default=2.0, gt=0)
    """How often the running gateway applies requests made beside it (`bidao household
    away`, a grid import). A long thumbs-up marks the home away for the box table's
    AWAY_NOTED_S (24 h): the box's recorded words say that figure, so it is no setting."""
    watch_households: list[str] = Field(default_factory=list)
    """Households watched though nobody in them is flagged as living alone (opt-in)."""
    outage_chunk: int = Field(default=200, ge=1)
    """When an outage ends, watched households restart their quiet clocks this many at a time."""
    blind_notice_after_s: float = Field(default=3600.0, ge=0)
    """A watched household's meter offline this long (counted from its offline transition,
    itself `supervision.missed_intervals` after its last frame) tells the community worker
    that the watch is blind; the installer's own alarm has the same hold-off by default
    (`supervision.health_raise_after_s`), so a short blip tells nobody."""
    ask_by_phone: bool = True
    """"Are you OK?" also rings the resident's own phone (when one is on record): pressing 1
    there answers like thumbs-up on the box, so a resident who is out or away is not taken
    for one who cannot get up."""

    @field_validator("answer_window_s")
    @classmethod
    def _box_can_show(cls, window_s: float) -> float:
        if window_s not in ARE_YOU_OK_PROMPTS:
            windows = ", ".join(str(w) for w in sorted(ARE_YOU_OK_PROMPTS))
            raise ValueError(
                f"the call box's amber light can last {windows} s; "
                f"answer_window_s {window_s:g} is none of them"
            )
        return window_s

    @model_validator(mode="after")
    def _consistent(self) -> WaterWatchSettings:
        self.rules()  # raises WaterRuleError (a ValueError's words) when they cannot work
        return self

    def rules(self) -> WaterRules:
        """The settings as the pure rules take them."""

        def minutes(hhmm: str) -> int:
            hours, mins = hhmm.split(":")
            return int(hours) * 60 + int(mins)

        try:
            return WaterRules(
                active_from_min=minutes(self.active_from),
                active_until_min=minutes(self.active_until),
                window_s=self.window_s,
                min_window_s=self.min_window_s,
                max_window_s=self.max_window_s,
                learn=self.learn,
                learn_days=self.learn_days,
                learn_min_days=self.learn_min_days,
                learn_rank=self.learn_rank,
                learn_margin_s=self.learn_margin_s,
                morning_check=self.morning_check,
                morning_margin_s=self.morning_margin_s,
                ask_first=self.ask_first,
                answer_window_s=self.answer_window_s,
                use_threshold_l=self.use_threshold_l,
                backflow_tolerance_l=self.backflow_tolerance_l,
                max_flow_l_per_s=self.max_flow_l_per_s,
                jump_slack_l=self.jump_slack_l,
                max_reading_gap_s=self.max_reading_gap_s,
                continuous_flow_s=self.continuous_flow_s,
                away_reminder_after_s=self.away_reminder_after_s,
                away_settle_s=self.away_settle_s,
                blind_notice_after_s=self.blind_notice_after_s,
            )
        except WaterRuleError as exc:
            raise ValueError(str(exc)) from None


class ProvisioningSettings(BaseModel):
    """Installers registering and checking devices in the field."""

    model_config = ConfigDict(extra="forbid")

    install_check_s: float = Field(default=600.0, gt=0)
    """How long an install check waits for the four keys (or the meter's rising reading)."""
    batch_max_rows: int = Field(default=5000, ge=1)
    """The most devices one manufacturer's CSV may register."""


class Settings(BaseSettings):
    """Everything the gateway needs; every duration lives here."""

    model_config = SettingsConfigDict(
        env_prefix="BIDAO_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("bidao-data")
    """SQLite file, broker persistence and the metrics snapshot live here."""
    database: Path | None = None
    """Defaults to <data_dir>/bidao.db."""
    mqtt: MqttSettings = MqttSettings()
    broker: BrokerSettings = BrokerSettings()
    serial: list[SerialLinkSettings] = Field(default_factory=list)
    pipeline: PipelineSettings = PipelineSettings()
    grid_import: ImportSettings = ImportSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    tickets: TicketSettings = TicketSettings()
    notify: NotifySettings = NotifySettings()
    indications: IndicationSettings = IndicationSettings()
    http: HttpSettings = HttpSettings()
    warnings: WarningThresholds = WarningThresholds()
    cards: CardThresholds = CardThresholds()
    runtime: RuntimeSettings = RuntimeSettings()
    water: WaterWatchSettings = WaterWatchSettings()
    work_group: WorkGroupSettings = WorkGroupSettings()
    provisioning: ProvisioningSettings = ProvisioningSettings()
    metrics_interval_s: float = Field(default=15.0, gt=0)
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("serial")
    @classmethod
    def _unique_link_names(cls, links: list[SerialLinkSettings]) -> list[SerialLinkSettings]:
        names = [link.name for link in links]
        if len(names) != len(set(names)) or "mqtt" in names:
            raise ValueError("serial link names must be unique and not 'mqtt'")
        return links

    @model_validator(mode="after")
    def _credits_fit_the_queue(self) -> Settings:
        shares = {link.name: link.credit for link in self.serial}
        if self.mqtt.enabled:
            shares["mqtt (receive_maximum)"] = self.mqtt.receive_maximum
        total = sum(shares.values())
        if total > self.pipeline.queue_max:
            parts = ", ".join(f"{name} {credit}" for name, credit in shares.items())
            raise ValueError(
                f"link credits add up to {total} ({parts}), more than pipeline.queue_max"
                f" {self.pipeline.queue_max}: lower a link's credit or raise the queue"
            )
        return self

    @property
    def database_path(self) -> Path:
        """Where the SQLite store lives."""
        return self.database or self.data_dir / "bidao.db"

    @property
    def metrics_path(self) -> Path:
        """Where the Prometheus text snapshot is written."""
        return self.data_dir / "metrics.prom"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - part of the fixed signature
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files here
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no secrets dir
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment wins over values passed in (the config file's and the caller's)."""
        return (env_settings, init_settings)


ENV_PREFIX = "BIDAO_"


def _unknown_env_settings(environ: Mapping[str, str]) -> list[str]:
    """BIDAO_* variables that name no setting (pydantic-settings would ignore them silently)."""
    problems = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        model: type[BaseModel] | None = Settings
        for part in name[len(ENV_PREFIX) :].lower().split("__"):
            if model is None:
                break  # below a dict, list or plain value: pydantic checks the value itself
            field = model.model_fields.get(part)
            if field is None:
                problems.append(f"unknown setting {name} in the environment")
                break
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
            else:
                model = None
    return problems


def _problems(exc: ValidationError, source: str) -> list[str]:
    """One readable line per validation error, naming the setting."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{where}'{source}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"setting '{where}'{source}: {message}")
    return problems


def load_settings(
    config_file: Path | None = None, *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings from defaults, an optional TOML file, explicit overrides and the environment.

    ConfigError lists every unknown or invalid setting, one line each.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
    values.update(overrides)
    problems = _unknown_env_settings(os.environ if environ is None else environ)
    if problems:
        raise ConfigError(*problems)
    source = f" in {config_file}" if config_file is not None else ""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(*_problems(exc, source)) from None
