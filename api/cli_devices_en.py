"""English: what `bidao device ...` and `bidao alarms` say, after the Chinese."""

TEXT: dict[str, str] = {
    "added": "registered {device} ({kind})",
    "added_household": "registered {device} ({kind}) for household {household}",
    "added_unit": "registered {device} ({kind}) installed in {unit}, with no household",
    "key_shown": "key (shown once; load it into the device): {key}",
    "no_household_warning": (
        "warning: {device} has no household. A press of its call key can reach nobody "
        "responsible, only an operator alarm. Attach it: bidao device attach {device} HOUSEHOLD"
    ),
    "attached": "attached {device} to household {household}",
    "moved": "moved {device} from household {before} to household {after}",
    "replaced": "{new} replaces {old} (household {household}); {old} is retired",
    "removed": (
        "retired {device} (was household {household}); its history is kept and its frames "
        "will be refused"
    ),
    "running_note": "a running gateway applies this within {seconds} s.",
    "no_history": "{device} has no recorded changes",
    "devices_count": "{count} devices",
    "alarms_none": "no open alarms",
    "alarms_count": "{count} alarms",
    "alarm_cleared": "alarm {alarm} cleared ({kind}, device {device})",
    "none": "none",
    "err_no_household": (
        "no household {household}; nothing was changed. Import it first "
        "(bidao import households) or check the code."
    ),
    "err_no_unit": "no grid unit {unit}; nothing was changed.",
    "err_not_registered": "device {device} is not registered.",
    "err_retired": "device {device} was removed and cannot be changed.",
    "err_has_household": "device {device} belongs to household {household}; use bidao device move.",
    "err_no_household_yet": "device {device} has no household yet; use bidao device attach.",
    "err_same_household": "device {device} belongs to household {household} already; nothing "
    "was changed.",
    "err_replace_same": "device {device} cannot replace itself.",
    "err_new_has_household": "device {device} belongs to household {household} and cannot "
    "replace another.",
    "err_kind_mismatch": "device {device} is not of the same kind as {other}.",
    "err_key_for_registered": "device {device} is registered with its own key; do not give --key.",
    "err_bad_key": "the key must be {length} bytes.",
    "err_bad_id": "{device} is not a device id of 16 hex digits.",
    "err_already_registered": "device {device} is registered already; nothing was changed. "
    "To attach it or change its household use bidao device attach or move.",
    "err_no_alarm": "no open alarm {alarm}.",
    # Labels
    "kind_call_box": "call box",
    "kind_water_meter": "water meter",
    "state_in_use": "in use",
    "state_retired": "retired",
    "status_online": "online",
    "status_offline": "offline",
    "status_unknown": "not heard",
    "action_added": "registered",
    "action_attached": "attached",
    "action_moved": "moved",
    "action_replaced": "replaced",
    "action_replaces": "replaces",
    "action_removed": "removed",
    "alarm_unassigned_call": "call from a box with no household",
    "alarm_unknown_household": "household does not exist",
    "alarm_call_failed": "call could not become a ticket",
    "alarm_press_failed": "key press failed",
    "alarm_health_no_household": "device alarm: device has no household",
    "alarm_health_no_installer": "device alarm: no installer on record",
    "alarm_link_down": "gateway link down",
    "alarm_provider_refused": (
        "the SMS/voice provider refused (template, balance or key): an administrator must act"
    ),
    "h_device": "device",
    "h_kind": "kind",
    "h_household": "household",
    "h_state": "state",
    "h_battery": "battery",
    "h_rssi": "rssi",
    "h_last_seen": "last seen",
    "h_at": "when",
    "h_action": "change",
    "h_from": "from",
    "h_to": "to",
    "h_other": "other box",
    "h_by": "by",
    "h_id": "id",
    "h_alarm": "alarm",
    "h_detail": "detail",
    "h_first": "first",
    "h_last": "last",
    "h_count": "times",
    "h_notified": "township told",
    "h_cleared": "cleared",
    # protocol administration (rotate-key, configure, reset-counters)
    "key_rotation": (
        "{device}: a new key (key id {key_id}) is ready. The gateway sends it to the box"
        " after the box's next frame and switches when the box first uses it; until then"
        " the box keeps working with its current key."
    ),
    "configured": (
        "{device}: the box will be sent {what} after its next frame, and again until it confirms."
    ),
    "configured_heartbeat": "heartbeat every {seconds} s",
    "configured_clock": "the time",
    "configured_and": " and ",
    "counters_reset": (
        "{device}: the gateway forgot the box's frame counters;"
        " the box's next frame sets them again."
    ),
    "action_key_rotation": "key rotation",
    "action_configured": "configured",
    "action_counters_reset": "counters reset",
}
