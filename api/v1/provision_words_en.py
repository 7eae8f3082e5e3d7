"""English: what installers read about registration, install checks and labels."""

from typing import Final

ROW: Final[dict[str, str]] = {
    "bad_header": "line {line}: the header must have the columns serial (or device_id) and key.",
    "too_many_rows": "line {line}: one batch registers at most {max} devices; split the file.",
    "empty": "the file lists no devices.",
    "bad_serial": "line {line}: serial '{serial}' is not 16 hex digits.",
    "bad_key": "line {line} ({serial}): the key must be 32 hex digits (16 bytes).",
    "bad_kind": "line {line} ({serial}): the kind must be call_box or water_meter.",
    "bad_label": "line {line} ({serial}): the label is too long (64 characters at most).",
    "duplicate_serial": "line {line}: serial {serial} is on line {other} already.",
    "already_registered": "line {line}: device {serial} is registered already.",
}
"""Why one row of a manufacturer's CSV was refused."""

BATCH_REFUSED: Final = (
    "Nothing was imported: {count} rows are wrong; correct them and import the whole file again."
)

KEYS: Final[dict[str, str]] = {
    "green": "green (call)",
    "red": "red (hang up)",
    "thumbs_up": "thumbs-up",
    "thumbs_down": "thumbs-down",
    "reading": "meter reading",
}

CHECK: Final[dict[str, str]] = {
    "running_box": "Press each of the box's four keys. Still to come: {missing}.",
    "running_meter": "Run the tap until the meter reports a higher reading.",
    "passed": "Check passed: the device is active.",
    "missing_keys": (
        "Check failed: {missing} never arrived. The device stays pending; check the keys and"
        " run the check again."
    ),
    "no_reading": "Check failed: no meter reading arrived. The device stays pending.",
    "volume_not_rising": "Check failed: the meter's reading did not rise. It stays pending.",
    "cancelled": "Check cancelled.",
    "restarted": "The check was started again.",
    "removed": "The device was decommissioned.",
}

STATE: Final[dict[str, str]] = {
    "active": "active",
    "checking": "being checked",
    "pending": "pending",
    "never_checked": "never checked",
}

LABEL_TITLE: Final = "Bidao call device"
KIND: Final[dict[str, str]] = {"call_box": "call box", "water_meter": "water meter"}
SEPARATOR: Final = ", "

CLI: Final[dict[str, str]] = {
    "started": "Check {check} started: press each of the four keys of {device} within"
    " {minutes} minutes.",
    "started_meter": "Check {check} started: run the tap within {minutes} minutes"
    " (meter {device}).",
    "received": "received: {key}",
    "reading": "meter reading: {litres} litres",
    "no_gateway": "The check's time is up but no gateway ended it: is bidao run running?"
    " Still missing: {missing}.",
}
