"""Provisioning for installers: register devices, run the install check, replace, label.

    POST /devices                          register one device by serial and key
    POST /devices/batch                    a manufacturer's CSV, all or nothing
    GET  /devices/{id}/installation        active or pending (and why), with its checks
    POST /devices/{id}/install-checks      start the install check
    GET  /install-checks/{id}              the check now: keys seen, keys missing
    GET  /install-checks/{id}/events       the same, live (server-sent events)
    POST /install-checks/{id}/cancel       end a running check
    POST /devices/{id}/replace             another registered box takes over the household
    POST /devices/{id}/rotate-key          start a key rotation (no key is ever shown)
    POST /devices/{id}/decommission        retire a device (its history stays)
    GET  /devices/{id}/label.svg           a printable label: QR code of the id, the id

Every route is scoped: an installer works on the devices and units assigned to them; outside
them the answer is 404 and nothing changes. No response contains a device key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal
from xml.sax.saxutils import escape

import segno
from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.v1 import provision_words_en as en
from api.v1 import provision_words_zh as zh
from api.v1.auth import ClientDep, FacadeDep, PrincipalDep
from api.v1.errors import ErrorBody, message, responses
from api.v1.models import Device, device_out
from gateway.application import (
    CHECK_KEYS,
    BatchRefusedError,
    CheckEvent,
    DeviceRecord,
    InstallCheck,
    RowProblem,
    ScopedDevice,
)

KindName = Literal["call_box", "water_meter"]
DeviceId = Annotated[str, Path(min_length=1, max_length=40)]
CheckId = Annotated[int, Path(ge=1, le=2**62)]
"""An install check's number (bounded: SQLite keeps 64-bit integers)."""
KEEPALIVE_S = 15.0
"""A comment line this often keeps a quiet event stream open through proxies."""
SSE_QUEUE_MAX = 64
LABEL_MIN_WIDTH = 260
"""Pixels: room for the id in print and the words under the code."""


class RegisterBody(BaseModel):
    """One device by the serial (device id) and key on the manufacturer's sheet."""

    device_id: str = Field(min_length=16, max_length=40, description="16 hex digits")
    kind: KindName = "call_box"
    key: str = Field(
        pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits; written, never shown again"
    )
    unit_code: str | None = Field(
        default=None, max_length=40, description="the unit it is installed in (installers: theirs)"
    )
    label: str | None = Field(default=None, max_length=64)


class BatchBody(BaseModel):
    """A manufacturer's CSV: a header with serial (or device_id) and key, kind and label."""

    csv: str = Field(min_length=1, max_length=2_000_000)
    unit_code: str | None = Field(default=None, max_length=40)
    kind: KindName = "call_box"
    """The kind of the rows that name none."""


class BatchResult(BaseModel):
    """The devices a batch registered (never their keys)."""

    count: int
    devices: list[str]


class RowRefusal(BaseModel):
    """One bad row of a refused batch."""

    line: int
    serial: str
    problem: str
    message: str
    """中文 / English."""


class BatchRefusal(ErrorBody):
    """A batch refused whole: every bad row, by its line in the file."""

    rows: list[RowRefusal]


class KeyOut(BaseModel):
    """One key of a call box in a check: whether and when it arrived."""

    key: str
    name: str
    """中文 / English."""
    seen: bool
    at: float | None


class ReadingOut(BaseModel):
    """A meter reading that arrived during a check."""

    at: float
    litres: int | None
    flow_lph: int | None


class InstallCheckOut(BaseModel):
    """An install check as the installer's page shows it."""

    id: int
    device_id: str
    kind: KindName
    state: Literal["running", "passed", "failed", "cancelled"]
    started_at: float
    ends_at: float
    ended_at: float | None
    started_by: str
    reason: str | None
    keys: list[KeyOut]
    """A call box's four keys in order (empty for a meter)."""
    missing: list[str]
    readings: list[ReadingOut]
    message: str
    """What to do or what happened: 中文 / English."""


class InstallationOut(BaseModel):
    """Whether a device is in service: active only after a passed install check."""

    device_id: str
    state: Literal["active", "pending", "checking"]
    reason: str | None
    message: str
    checks: list[InstallCheckOut]


class ReplaceBody(BaseModel):
    """The registered box that takes over."""

    new_device_id: str = Field(min_length=16, max_length=40)


class ReplaceOut(BaseModel):
    """The old box retired (its history kept), the new one in the household."""

    old_device_id: str
    household_code: str | None
    new: Device


def _both(zh_text: str, en_text: str) -> str:
    return f"{zh_text} / {en_text}"


def _key_names(keys: tuple[str, ...] | list[str], words: dict[str, str], sep: str) -> str:
    return sep.join(words[k] for k in keys)


def check_message(check: InstallCheck) -> str:
    """What the page says about a check, Chinese then English."""
    missing = check.keys_missing
    if check.state == "running":
        which = "running_box" if check.kind == "call_box" else "running_meter"
        return _both(
            zh.CHECK[which].format(missing=_key_names(missing, zh.KEYS, zh.SEPARATOR)),
            en.CHECK[which].format(missing=_key_names(missing, en.KEYS, en.SEPARATOR)),
        )
    which = "passed" if check.state == "passed" else (check.reason or "cancelled")
    return _both(
        zh.CHECK[which].format(missing=_key_names(missing, zh.KEYS, zh.SEPARATOR)),
        en.CHECK[which].format(missing=_key_names(missing, en.KEYS, en.SEPARATOR)),
    )


def check_out(check: InstallCheck) -> InstallCheckOut:
    """An install check for the API."""
    first: dict[str, float] = {}
    for step in check.steps:
        first.setdefault(step.what, step.at)
    keys = (
        [
            KeyOut(
                key=k,
                name=_both(zh.KEYS[k], en.KEYS[k]),
                seen=k in first,
                at=first.get(k),
            )
            for k in CHECK_KEYS
        ]
        if check.kind == "call_box"
        else []
    )
    return InstallCheckOut(
        id=check.id,
        device_id=check.device_id,
        kind=check.kind,
        state=check.state,
        started_at=check.started_at,
        ends_at=check.ends_at,
        ended_at=check.ended_at,
        started_by=check.started_by,
        reason=check.reason,
        keys=keys,
        missing=list(check.keys_missing),
        readings=[
            ReadingOut(at=r.at, litres=r.litres, flow_lph=r.flow_lph) for r in check.readings
        ],
        message=check_message(check),
    )


def row_out(problem: RowProblem, max_rows: int) -> RowRefusal:
    """One refused row with its words."""
    values = {
        "line": problem.line,
        "serial": problem.serial,
        "other": problem.other_line or "",
        "max": max_rows,
    }
    return RowRefusal(
        line=problem.line,
        serial=problem.serial,
        problem=problem.code,
        message=_both(zh.ROW[problem.code].format(**values), en.ROW[problem.code].format(**values)),
    )


def record_out(record: DeviceRecord, unit_code: str | None) -> Device:
    """A device just changed, for the API (no key)."""
    return device_out(ScopedDevice(record, unit_code))


def label_svg(device_id: str, kind: str) -> str:
    """A printable label: the QR code of the device id, the id grouped for reading, the kind.

    Nothing secret is on it: the id is printed on the box already.
    """
    qr = segno.make(device_id, error="m")
    scale = 5
    # segno's border is the quiet zone a scanner needs (4 modules).
    size, _ = qr.symbol_size(scale=scale, border=4)
    width = max(size, LABEL_MIN_WIDTH)
    code = qr.svg_inline(scale=scale, border=4, svgclass=None, lineclass=None)
    code = code.replace("<svg ", f'<svg x="{(width - size) // 2}" y="0" ', 1)
    grouped = " ".join(device_id[i : i + 4] for i in range(0, len(device_id), 4))
    height = size + 64
    kind_words = escape(_both(zh.KIND.get(kind, kind), en.KIND.get(kind, kind)))
    title = escape(_both(zh.LABEL_TITLE, en.LABEL_TITLE))
    base = size
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">'
        f"<title>{escape(device_id)}</title>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f"{code}"
        f'<g font-family="sans-serif" text-anchor="middle" fill="#000">'
        f'<text x="{width / 2}" y="{base + 24}" font-size="18" font-family="monospace"'
        f' font-weight="bold">{escape(grouped)}</text>'
        f'<text x="{width / 2}" y="{base + 44}" font-size="11">{kind_words}</text>'
        f'<text x="{width / 2}" y="{base + 60}" font-size="10">{title}</text>'
        "</g></svg>"
    )


def provisioning_router() -> APIRouter:  # noqa: PLR0915 - one closure per route
    """The installers' routes (see the module docstring)."""
    router = APIRouter(tags=["provisioning"])

    @router.post(
        "/devices",
        response_model=Device,
        status_code=201,
        responses=responses("forbidden", "not_found", "device_refused"),
    )
    async def register(
        body: RegisterBody, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> Device:
        """Register one device in a unit of the installer's (its key is never shown again)."""
        scoped = await application.scoped_register_device(
            principal,
            body.device_id,
            body.kind,
            bytes.fromhex(body.key),
            body.unit_code,
            body.label,
            client,
        )
        return device_out(scoped)

    @router.post(
        "/devices/batch",
        response_model=BatchResult,
        status_code=201,
        responses={
            **responses("forbidden", "not_found", "device_refused"),
            422: {"model": BatchRefusal, "description": "batch_refused, bad_input"},
        },
    )
    async def batch(
        body: BatchBody, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> BatchResult | JSONResponse:
        """Register a manufacturer's CSV of serials and keys: every row or none.

        A refusal names each bad row by its line in the file; nothing is written then.
        """
        try:
            records = await application.scoped_register_batch(
                principal, body.csv, body.unit_code, body.kind, client
            )
        except BatchRefusedError as exc:
            application.count_api_refusal("batch_refused")
            max_rows = application.settings.provisioning.batch_max_rows
            rows = [row_out(p, max_rows) for p in exc.rows]
            count = str(len(rows))
            detail = _both(
                zh.BATCH_REFUSED.format(count=count), en.BATCH_REFUSED.format(count=count)
            )
            refusal = BatchRefusal(
                error="batch_refused",
                message=message("batch_refused", {"detail": detail}),
                rows=rows,
            )
            return JSONResponse(
                refusal.model_dump(), status_code=422, headers={"Cache-Control": "no-store"}
            )
        return BatchResult(count=len(records), devices=[r.device_id for r in records])

    @router.get(
        "/devices/{device_id}/installation",
        response_model=InstallationOut,
        responses=responses("forbidden", "not_found"),
    )
    async def installation(
        device_id: DeviceId, principal: PrincipalDep, application: FacadeDep
    ) -> InstallationOut:
        """Active (its latest install check passed) or pending, with the reason."""
        scoped = await application.scoped_device(principal, device_id)
        state, reason, checks = await application.scoped_install_state(principal, device_id)
        word = reason if state == "pending" and reason == "never_checked" else state
        return InstallationOut(
            device_id=scoped.device.device_id,
            state=state,
            reason=reason,
            message=_both(zh.STATE[word], en.STATE[word]),
            checks=[check_out(c) for c in checks],
        )

    @router.post(
        "/devices/{device_id}/install-checks",
        response_model=InstallCheckOut,
        status_code=201,
        responses=responses("forbidden", "not_found", "device_refused", "not_running"),
    )
    async def start_check(
        device_id: DeviceId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> InstallCheckOut:
        """Start the install check: press each key (or run water) within the check's time.

        Presses during the check raise no ticket and call nobody; they are acknowledged to
        the box and shown here. A running check of the device is ended and started again.
        """
        return check_out(await application.scoped_start_check(principal, device_id, client))

    @router.get(
        "/install-checks/{check_id}",
        response_model=InstallCheckOut,
        responses=responses("forbidden", "not_found"),
    )
    async def check(
        check_id: CheckId, principal: PrincipalDep, application: FacadeDep
    ) -> InstallCheckOut:
        """The install check now: each key, whether it arrived, and what to do."""
        return check_out(await application.scoped_install_check(principal, check_id))

    @router.post(
        "/install-checks/{check_id}/cancel",
        response_model=InstallCheckOut,
        responses=responses("forbidden", "not_found", "device_refused", "not_running"),
    )
    async def cancel(
        check_id: CheckId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> InstallCheckOut:
        """End a running install check (the device stays pending)."""
        return check_out(await application.scoped_cancel_check(principal, check_id, client))

    @router.get(
        "/install-checks/{check_id}/events",
        responses={
            **responses("forbidden", "not_found", "not_running"),
            200: {
                "content": {"text/event-stream": {}},
                "description": "`event: check` with an InstallCheckOut as data, at once and"
                " on every change; the stream ends when the check does",
            },
        },
    )
    async def events(
        check_id: CheckId, principal: PrincipalDep, application: FacadeDep
    ) -> StreamingResponse:
        """The install check live: its state now, then again each time a key arrives."""
        queue: asyncio.Queue[InstallCheck] = asyncio.Queue(SSE_QUEUE_MAX)

        def heard(event: CheckEvent) -> None:
            if event.check.id == check_id:
                if queue.full():
                    # Each event carries the whole check: the newest is all a page needs.
                    queue.get_nowait()
                queue.put_nowait(event.check)

        unsubscribe = application.subscribe_install_checks(heard)
        try:
            current = await application.scoped_install_check(principal, check_id)
        except BaseException:
            unsubscribe()
            raise

        async def stream() -> AsyncIterator[str]:
            try:
                latest = current
                yield _sse(latest)
                while latest.state == "running":
                    try:
                        async with asyncio.timeout(KEEPALIVE_S):
                            latest = await queue.get()
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield _sse(latest)
            finally:
                unsubscribe()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post(
        "/devices/{device_id}/replace",
        response_model=ReplaceOut,
        responses=responses("forbidden", "not_found", "device_refused"),
    )
    async def replace(
        device_id: DeviceId,
        body: ReplaceBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> ReplaceOut:
        """A registered box with no household takes over this one's; this one is retired.

        The household keeps its tickets and history; the old box keeps its own history.
        """
        old, new = await application.scoped_replace_device(
            principal, device_id, body.new_device_id, client
        )
        scoped = await application.scoped_device(principal, new.device_id)
        return ReplaceOut(
            old_device_id=old.device_id,
            household_code=new.household_code,
            new=device_out(scoped),
        )

    @router.post(
        "/devices/{device_id}/rotate-key",
        response_model=Device,
        responses=responses("forbidden", "not_found", "device_refused"),
    )
    async def rotate_key(
        device_id: DeviceId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> Device:
        """Start a key rotation; the gateway finishes it with the box (no key is shown)."""
        await application.scoped_rotate_key(principal, device_id, client)
        return device_out(await application.scoped_device(principal, device_id))

    @router.post(
        "/devices/{device_id}/decommission",
        response_model=Device,
        responses=responses("forbidden", "not_found", "device_refused"),
    )
    async def decommission(
        device_id: DeviceId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> Device:
        """Retire a device: its frames are refused from now on; its history stays."""
        scoped = await application.scoped_device(principal, device_id)
        record = await application.scoped_remove_device(principal, device_id, client)
        return record_out(record, scoped.unit_code)

    @router.get(
        "/devices/{device_id}/label.svg",
        responses={
            **responses("forbidden", "not_found"),
            200: {"content": {"image/svg+xml": {}}, "description": "the label to print"},
        },
    )
    async def label(
        device_id: DeviceId, principal: PrincipalDep, application: FacadeDep
    ) -> Response:
        """A printable label with the QR code of the device id and the id as text (no key)."""
        scoped = await application.scoped_device(principal, device_id)
        return Response(
            label_svg(scoped.device.device_id, scoped.device.kind),
            media_type="image/svg+xml",
            headers={
                "Content-Disposition": f'inline; filename="bidao-{scoped.device.device_id}.svg"'
            },
        )

    return router


def _sse(check: InstallCheck) -> str:
    """One server-sent event carrying the check."""
    data = json.dumps(check_out(check).model_dump(), ensure_ascii=False, separators=(",", ":"))
    return f"event: check\nid: {len(check.steps)}\ndata: {data}\n\n"
