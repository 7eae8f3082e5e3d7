"""`bidao sim phones received`: what each phone got, for a tester to read or a script to parse.

The fake phone network knows numbers, not people or tickets. Names come from CSV files the
tester passes (`--names`): the gateway's own grid import files work as they are (contacts:
name, role, phone; households: resident_name, resident_phone), so device_sim needs nothing
from the gateway's code. Tickets are found in what was sent or said: every text the gateway
sends about a ticket names it ("工单12", "Ticket 12"), and a call put through to another
phone belongs to the tickets of the call it was placed from. The gateway's notification id,
in the status callback and TwiML URLs, is shown with `--json` but is not a ticket number.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from device_sim.locales import en, zh_cn

DEFAULT_ZONE = "Asia/Shanghai"
ZONE_VARIABLE = "BIDAO_TICKETS__TIMEZONE"
"""The gateway's own setting of its zone ([tickets] timezone), used when --tz is not given."""
PHONE_COLUMNS = ("phone", "resident_phone", "电话", "手机")
NAME_COLUMNS = ("name", "resident_name", "姓名")
ROLE_COLUMNS = ("role", "角色")
_TICKET = re.compile(r"工单\s*(\d+)|[Tt]icket\s+(\d+)")
_NOTIFICATION = re.compile(r"/webhooks/twilio/(?:status|voice)/(\d+)")
_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ViewError(ValueError):
    """Input the view cannot use (a names file, a time); the message says what and where."""


@dataclass(frozen=True)
class Person:
    """Who has a number: a name and a gateway role code ("resident" for a household's)."""

    name: str
    role: str


def words(key: str, **values: object) -> str:
    """Chinese first, then English."""
    return f"{zh_cn.WORDS[key].format(**values)} {en.WORDS[key].format(**values)}"


def phone_key(number: str) -> str:
    """A number as digits only, without China's +86, so that written forms compare equal."""
    digits = re.sub(r"\D", "", number)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def _printable(text: str) -> str:
    """Without control characters (a names file must not drive the terminal)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def load_names(path: Path) -> dict[str, Person]:
    """People by number from one CSV file with a header row (see the module's docstring)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ViewError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ViewError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ViewError(f"{path}: not a CSV file: {exc}") from None
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    phone, name = _column(header, PHONE_COLUMNS), _column(header, NAME_COLUMNS)
    if phone is None or name is None:
        raise ViewError(
            f"{path}: the first line must name a phone column ({', '.join(PHONE_COLUMNS)}) "
            f"and a name column ({', '.join(NAME_COLUMNS)})"
        )
    role = _column(header, ROLE_COLUMNS)
    default_role = "resident" if header[phone] == "resident_phone" else ""
    people: dict[str, Person] = {}
    for row in rows[1:]:
        cells = [*row, *[""] * (len(header) - len(row))]
        number = phone_key(cells[phone])
        if number:
            who = _printable(cells[role]) if role is not None else default_role
            people[number] = Person(_printable(cells[name]), who or default_role)
    return people


def zone_named(name: str) -> ZoneInfo:
    """The time zone called `name`."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise ViewError(f"unknown time zone {name!r} (for example Asia/Shanghai)") from None


def parse_since(text: str, zone: ZoneInfo, now: float) -> float:
    """A moment written as "30m", "2h", "1d" ago, "08:30" today, or "2025-05-01 08:30"."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - int(relative[1]) * _UNITS[relative[2]]
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        pass
    else:
        today = datetime.fromtimestamp(now, zone).date()
        return datetime.combine(today, clock, zone).timestamp()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ViewError(
            f"--since {text!r}: write 30m, 2h or 1d ago, 08:30 today, or 2025-05-01 08:30"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


def _tickets(texts: list[str]) -> list[int]:
    found = {int(a or b) for text in texts for a, b in _TICKET.findall(text)}
    return sorted(found)


def _said(record: dict[str, Any]) -> list[str]:
    if record["kind"] == "sms":
        return [str(record["body"])]
    return [str(h["text"]) for h in record.get("transcript", []) if h["kind"] == "say"]


def _local(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def _person(number: str, people: dict[str, Person]) -> dict[str, str]:
    found = people.get(phone_key(number))
    if found is None:
        return {"name": "", "role": "", "role_label": ""}
    label = words(found.role) if found.role in zh_cn.WORDS else found.role
    return {"name": found.name, "role": found.role, "role_label": label}


def entries(
    records: list[dict[str, Any]], people: dict[str, Person], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Every message and call as a tester or script reads it, oldest first."""
    by_sid = {r["sid"]: r for r in records}
    shown = []
    for r in sorted(records, key=lambda r: float(r["created_at"])):
        parent = by_sid.get(r.get("parent_sid") or "")
        urls = f"{r.get('status_callback', '')} {r.get('url', '')}"
        notification = _NOTIFICATION.search(urls)
        status = r["statuses"][-1] if r["statuses"] else "queued"
        transcript = [
            {
                **h,
                "time": _local(float(h["at"]), zone),
                **(
                    {"person": _person(h["text"], people)}
                    if h["kind"] in ("dial", "bridged")
                    else {}
                ),
            }
            for h in r.get("transcript", [])
        ]
        shown.append(
            {
                "sid": r["sid"],
                "channel": "sms" if r["kind"] == "sms" else "call",
                "to": r["to"],
                **_person(r["to"], people),
                "from": r["sender"],
                "time": _local(float(r["created_at"]), zone),
                "at": float(r["created_at"]),
                "status": status,
                "status_label": _status_label(r, status),
                "statuses": list(r["statuses"]),
                "updated_time": _local(float(r["updated_at"]), zone) if r["updated_at"] else None,
                "error_code": r.get("error_code", ""),
                "text": r["body"] if r["kind"] == "sms" else None,
                "transcript": transcript if r["kind"] == "call" else None,
                "pressed": r["pressed"],
                "answered_by": r.get("answered_by", ""),
                "duration_s": round(float(r.get("duration_s", 0.0))),
                "connected_to": r["connected_to"],
                "parent_sid": r["parent_sid"] or None,
                "notification": int(notification[1]) if notification else None,
                "tickets": _tickets(_said(parent if parent is not None else r)),
            }
        )
    return shown


def _status_label(record: dict[str, Any], status: str) -> str:
    if status == "completed" and record.get("answered_by", "").startswith("machine"):
        status = "completed_machine"
    return words(status) if status in zh_cn.WORDS else status


def select(
    shown: list[dict[str, Any]], *, to: str = "", ticket: int | None = None, since: float = 0.0
) -> list[dict[str, Any]]:
    """The entries to one number, about one ticket, from one moment on."""
    return [
        e
        for e in shown
        if (not to or phone_key(e["to"]) == phone_key(to))
        and (ticket is None or ticket in e["tickets"])
        and e["at"] >= since
    ]


def width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def who(number: str, person: dict[str, str]) -> str:
    """A number with its person's name and role, when known."""
    if not person["name"]:
        return number
    role = zh_cn.WORDS.get(person["role"], person["role"])
    return f"{number} {person['name']}（{role}）" if role else f"{number} {person['name']}"


def state_label(e: dict[str, Any]) -> str:
    """An entry's delivery state, with a call's duration or the error code."""
    state = str(e["status_label"])
    if e["channel"] == "call" and e["status"] == "completed" and e["duration_s"]:
        state += f"（{words('duration', seconds=e['duration_s'])}）"
    if e["error_code"]:
        state += f"（{words('error_code')} {e['error_code']}）"
    return state


def transcript_line(h: dict[str, Any], machine: bool) -> str:
    """One thing a phone heard or did on a call (`machine`: voicemail took it)."""
    kind, text = h["kind"], str(h["text"])
    if kind in {"say", "play"}:
        label = "voicemail" if machine else kind
        repeat = int(h.get("repeat", 1))
        times = ""
        if repeat == 0:
            times = f"（{words('until_hangup')}）"
        elif repeat > 1:
            times = f"（{repeat}{zh_cn.WORDS['times']} {repeat} {en.WORDS['times']}）"
        return f"{words(label)}：{text}{times}"
    if kind == "pause":
        return f"{words('pause')}：{text}{zh_cn.WORDS['seconds']} {text} {en.WORDS['seconds']}"
    if kind == "keypress":
        return f"{words('keypress')}：{text}"
    if kind == "no_key":
        return f"{words('no_key')}（{words('no_key_detail', seconds=text)}）"
    if kind in ("dial", "bridged"):
        line = f"{words(kind)}：{who(text, h['person'])}"
        status = str(h.get("detail", ""))
        return f"{line} → {words(status)}" if status in zh_cn.WORDS else line
    reason = f"end_{text}"
    detail = f"：{h['detail']}" if h.get("detail") else ""
    return f"{words('end')}：{words(reason) if reason in zh_cn.WORDS else text}{detail}"


def render(shown: list[dict[str, Any]], *, anything: bool) -> list[str]:
    """The entries as lines for a terminal, columns aligned for Chinese characters."""
    if not shown:
        return [words("nothing_matches") if anything else words("nothing")]
    header = [words(k) for k in ("col_time", "col_to", "col_channel", "col_state")]
    rows = [
        [
            e["time"].replace("T", " ")[:19],
            who(e["to"], e),
            words("leg" if e["parent_sid"] else e["channel"]),
            state_label(e),
        ]
        for e in shown
    ]
    widths = [max(width(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(cells: list[str]) -> str:
        return "  ".join([*(_pad(c, w) for c, w in zip(cells, widths, strict=False)), cells[3]])

    lines = [line(header)]
    for e, row in zip(shown, rows, strict=True):
        lines.append(line(row))
        if e["channel"] == "sms":
            lines.append(f"    {e['text']}")
        else:
            machine = str(e["answered_by"]).startswith("machine")
            lines.extend(f"    {transcript_line(h, machine)}" for h in e["transcript"])
    lines.append(words("count", count=len(shown)))
    return lines
