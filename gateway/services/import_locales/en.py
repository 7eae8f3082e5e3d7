"""`bidao import` in English: every message (the English headers are the column names)."""

from __future__ import annotations

HEADERS: dict[str, dict[str, tuple[str, ...]]] = {}
VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "flag": {"1": ("true", "yes", "y"), "0": ("false", "no", "n")},
    "notify": {"first_use": ("good_morning", "good morning")},
}
WORDS: dict[str, str] = {
    "unit": "this unit",
    "household": "this household",
    "box": "this call box",
    "contact": "this contact (same role, unit or household, phone)",
    "units": "units",
    "households": "households",
    "contacts": "contacts",
}

MESSAGES: dict[str, str] = {
    # The file as a whole
    "not_utf8": (
        'not UTF-8 text (byte 0x${byte}); save the file as "CSV UTF-8" '
        "(Excel's plain CSV is GBK on Chinese Windows)"
    ),
    "not_csv": "not CSV: ${reason}",
    "empty": "empty file: no header row",
    "too_many_rows": "more than ${max} rows; split the file",
    "missing_column": "required column missing",
    "unknown_column": "unknown column for ${kind} (expected ${expected})",
    "duplicate_column": "column appears twice",
    # A row
    "extra_value": "a value under a column with no header: ${value}",
    "too_many_fields": "${fields} fields, but the header has ${header}",
    "required": "required",
    "too_long": "too long: ${length} characters, at most ${cap}",
    "invisible": (
        "contains a control or invisible character ${char} (character ${position}); remove it"
    ),
    "formula": "must not begin with '${first}' (a spreadsheet runs it as a formula)",
    "code": "letters, digits and '-', beginning with a letter or digit; at most ${cap}",
    "key_safe": "letters, digits and '-', beginning with a letter or digit; at most ${cap}",
    "phone_characters": "not a phone number: digits, a leading '+', spaces, '-' and brackets only",
    "phone_international": (
        "not an international number (+country code and number, at most 15 digits)"
    ),
    "phone_mobile": "not a mobile number (11 digits beginning 13 to 19, e.g. 139-0000-0020)",
    "phone_landline": "not a landline number (area code and 7 or 8 digits, e.g. 0558-1234567)",
    "phone_area": "a landline number needs its area code (e.g. 0558-1234567)",
    "time": "not a time: use the 24-hour clock, e.g. 8:00, 08:00, 8点, 8点半, 20:30",
    "time_24_start": "24:00 is the end of the day, not a start",
    "never_available": "available_from and available_to are both ${time}: never reachable",
    "flag": "expected 1/0 or 是/否, got '${value}'",
    "notify": "events must be among ${choices}, got '${value}'",
    "notify_none": "'none' cannot be listed with other events",
    "first_use_family": "first_use (the day's first water use) is for family only",
    "level": "must be one of ${choices}, got '${value}'",
    "role": "must be one of ${choices}, got '${value}'",
    "language": "must be one of ${choices}, got '${value}'",
    "family_household": "family: a household_code and no unit_code",
    "role_unit": "${role}: a unit_code and no household_code",
    "duplicate_key": "${what} is already on line ${first}",
    "device_id_required": "required with a device_key",
    "device_id_hex": "must be 16 hex digits",
    "device_key_required": "required with a device_id (${digits} hex digits)",
    "device_key_hex": "must be ${digits} hex digits",
    "unknown_unit": "unknown unit ${unit}: import the units first",
    "not_neighbourhood": "${unit} is a ${level}, not a neighbourhood",
    "unknown_household": "unknown household ${household}: import the households first",
    "box_other": (
        "household ${household} already has call box ${other}; "
        "a box is replaced by provisioning, not by import"
    ),
    "box_kind": "${device} is registered as a ${kind}",
    "box_owner": (
        "call box ${device} is registered to household ${owner}; "
        "a box is moved by provisioning, not by import"
    ),
    "box_no_owner": (
        "call box ${device} is registered to no household; "
        "a box is moved by provisioning, not by import"
    ),
    "box_key": (
        "differs from the registered key of ${device}; "
        "keys are rotated by provisioning, not by import"
    ),
    "unit_level": "${code} is a ${level} in the grid; its level is not changed by import",
    "unit_parent": "${code} sits in ${parent} in the grid; moving it is not done by import",
    "county_parent": "a county has no parent",
    "parent_required": "required: the ${above} this ${level} sits in",
    "parent_rejected": "its parent ${parent} (line ${line}) is rejected",
    "parent_unknown": "unknown parent ${parent}: not in the grid nor in this file",
    "parent_level": "a ${level} must sit in a ${above}, not a ${parent_level}",
}

AT_LINE = "${file} line ${line}, ${column}: ${message}"
AT_FILE = "${file} line ${line}: ${message}"
COLUMN = "${column}"
MORE = "${file}: and ${count} more errors not shown"
REFUSED = "${file}: file rejected, nothing imported"
ROWS_REFUSED = (
    "${file}: file rejected, nothing imported: ${rejected} of ${rows} ${kind} rows have errors; "
    "correct them and import the whole file again"
)
CHECKED_REFUSED = (
    "${file}: checked, nothing written: ${rejected} of ${rows} ${kind} rows have errors; "
    "an import would reject the whole file"
)
SUMMARY = (
    "${file}: ${done}: ${rows} ${kind} rows: ${inserted} inserted, ${updated} updated, "
    "${unchanged} unchanged, ${rejected} rejected${boxes}"
)
DONE = "imported"
CHECKED = "checked, nothing written"
BOXES = "; ${devices} new call boxes"
