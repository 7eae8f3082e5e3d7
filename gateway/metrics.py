"""The gateway's counters, on a registry of its own so that several gateways can share a test."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class GatewayMetrics:
    """Counters for frames, rejects, commits, acks, links and devices."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.frames_received = Counter(
            "bidao_frames_received",
            "Frames that passed verification, by transport and message type",
            ["transport", "type"],
            registry=r,
        )
        self.frames_rejected = Counter(
            "bidao_frames_rejected",
            "Frames dropped without a protocol ack, by transport and reason",
            ["transport", "reason"],
            registry=r,
        )
        self.frames_nacked = Counter(
            "bidao_frames_nacked",
            "Authenticated frames answered with a nack, by reason",
            ["transport", "reason"],
            registry=r,
        )
        self.uplink_topics_normalised = Counter(
            "bidao_uplink_topics_normalised",
            "Uplinks whose topic spelled the device id in upper case, taken as lower case",
            ["transport"],
            registry=r,
        )
        self.duplicates = Counter(
            "bidao_frames_duplicate",
            "Frames already stored, acked again and otherwise ignored",
            ["transport"],
            registry=r,
        )
        self.commit_batch_size = Histogram(
            "bidao_commit_batch_size",
            "Frames committed per transaction",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.commit_latency = Histogram(
            "bidao_commit_latency_seconds",
            "Time to commit one ingest transaction",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.urgent_stages = Histogram(
            "bidao_urgent_stage_seconds",
            "Where an urgent frame's time goes inside the gateway: queued (arrived to taken by "
            "the urgent lane), screened (parsed, verified, decoded), writer_wait (for the "
            "store's write lock), write (its transaction, commit and fsync), acked (after the "
            "commit until its ack is handed to the link)",
            ["stage"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.commit_failures = Counter(
            "bidao_commit_failures", "Ingest transactions that failed and were retried", registry=r
        )
        self.acks_sent = Counter(
            "bidao_acks_sent", "Protocol acks sent to devices, by code", ["code"], registry=r
        )
        self.downlinks_sent = Counter(
            "bidao_downlinks_sent",
            "Downlink frames sent, by link and type",
            ["link", "type"],
            registry=r,
        )
        self.downlinks_failed = Counter(
            "bidao_downlinks_failed",
            "Downlinks that could not be sent, by reason",
            ["reason"],
            registry=r,
        )
        self.downlinks_resent = Counter(
            "bidao_downlinks_resent",
            "MQTT downlinks the broker had not confirmed when their connection was lost,"
            " published on the next one",
            registry=r,
        )
        self.devices_online = Gauge("bidao_devices_online", "Devices currently online", registry=r)
        self.devices_offline = Gauge(
            "bidao_devices_offline", "Devices currently offline", registry=r
        )
        self.device_transitions = Counter(
            "bidao_device_transitions", "Device status changes, by kind", ["kind"], registry=r
        )
        self.link_connects = Counter(
            "bidao_link_connects", "Successful (re)connections, by link", ["link"], registry=r
        )
        self.link_failures = Counter(
            "bidao_link_failures", "Failed connections or lost links, by link", ["link"], registry=r
        )
        self.link_read_pauses = Counter(
            "bidao_link_read_pauses",
            "Times a link stopped reading because its credit was used up, by link",
            ["link"],
            registry=r,
        )
        self.water = Counter(
            "bidao_water_watch",
            "Steps of the water watch (asked, answered, alarms, all-clears, counter resets, ...)",
            ["event"],
            registry=r,
        )
        self.indications = Counter(
            "bidao_indications",
            "Box indications handed to a link, retried later or superseded, by outcome",
            ["outcome"],
            registry=r,
        )
        self.pipeline_queue = Gauge(
            "bidao_pipeline_queue_depth", "Frames waiting for the ingest pipeline", registry=r
        )
        self.pipeline_lane_queue = Gauge(
            "bidao_pipeline_lane_depth",
            "Frames waiting in one lane of the ingest pipeline (urgent, telemetry)",
            ["lane"],
            registry=r,
        )
        self.pipeline_urgent_yields = Counter(
            "bidao_pipeline_urgent_yields",
            "Times the urgent lane let a telemetry batch go first after a burst",
            registry=r,
        )
        self.tickets = Counter(
            "bidao_tickets", "Ticket lifecycle events, by kind", ["event"], registry=r
        )
        self.work_group_posts = Counter(
            "bidao_work_group_posts",
            "Ticket progress posted to village work groups (WeCom robots), by outcome",
            ["outcome"],
            registry=r,
        )
        self.operator_alarms = Counter(
            "bidao_operator_alarms",
            "Operator alarms raised (a call that reached nobody, a box set up wrongly), by kind",
            ["kind"],
            registry=r,
        )
        self.device_notices = Counter(
            "bidao_device_notices",
            "Box offline and back-online notices written for people, by kind",
            ["kind"],
            registry=r,
        )
        self.install_checks = Counter(
            "bidao_install_checks",
            "Install checks started and ended (passed, failed, cancelled), and presses"
            " kept from the tickets because a check was running",
            ["event"],
            registry=r,
        )
        self.notifications = Counter(
            "bidao_notifications",
            "Notifications handed to the provider, retried or failed, by channel",
            ["channel", "outcome"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "bidao_webhooks_rejected",
            "Webhook requests refused, by reason",
            ["reason"],
            registry=r,
        )
        self.responder_links_refused = Counter(
            "bidao_responder_links_refused",
            "Responder page requests refused, by reason",
            ["reason"],
            registry=r,
        )
        self.signin_attempts = Counter(
            "bidao_signin_attempts",
            "Password sign-ins, by outcome (ok, bad_credentials, disabled, rate_limited)",
            ["outcome"],
            registry=r,
        )
        self.api_refused = Counter(
            "bidao_api_refused",
            "API requests refused, by reason (not_signed_in, forbidden, not_found, bad_input...)",
            ["reason"],
            registry=r,
        )
        self.status_callbacks = Counter(
            "bidao_status_callbacks",
            "Provider status callbacks, by state and whether they changed anything",
            ["state", "applied"],
            registry=r,
        )
        self.callback_errors = Counter(
            "bidao_callback_errors",
            "Exceptions caught at a library callback boundary, by place",
            ["where"],
            registry=r,
        )
        self.deadline_failures = Counter(
            "bidao_deadline_failures",
            "Deadlines whose handler raised, by kind and outcome (retry, quarantined)",
            ["kind", "outcome"],
            registry=r,
        )
        self.part_state = Gauge(
            "bidao_part_state",
            "1 for the state each long-lived part is in (starting, running, restarting,"
            " failed, stopped), 0 for the others",
            ["part", "state"],
            registry=r,
        )
        self.part_restarts = Counter(
            "bidao_part_restarts",
            "Restarts of a long-lived part after it raised or ended unexpectedly",
            ["part"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "bidao_loop_lag_seconds",
            "How late the event loop woke a task that asked to sleep",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.gc_pause = Histogram(
            "bidao_gc_pause_seconds",
            "Passes of Python's cyclic collector (the event loop stands still), by generation",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.gc_frozen = Gauge(
            "bidao_gc_frozen_objects",
            "Objects frozen out of the collector's sight, counted at the first freeze and after"
            " each thaw (levels off once the fleet is heard)",
            registry=r,
        )
        self.loop_lag_worst = Gauge(
            "bidao_loop_lag_worst_seconds",
            "The worst event-loop lag within the recent window",
            registry=r,
        )
        self.import_rows = Counter(
            "bidao_import_rows",
            "CSV rows imported, by file kind and outcome (inserted, updated, unchanged, rejected)",
            ["kind", "outcome"],
            registry=r,
        )
        self.import_files_rejected = Counter(
            "bidao_import_files_rejected",
            "Grid import files rejected whole (unusable, or with a bad row), by file kind",
            ["kind"],
            registry=r,
        )
        self.import_transactions = Counter(
            "bidao_import_transactions",
            "Grid import write transactions committed, by file kind",
            ["kind"],
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def write_snapshot(self, path: Path) -> None:
        """Atomically replace `path` with the current exposition (node-exporter textfile style)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(self.render())
        tmp.replace(path)
