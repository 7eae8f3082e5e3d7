"""The installers' page: find a device, bind it, run its install check live, register more.

    GET  /dash/install?device=ID        the guide, the finder and, with an id, the device:
                                        its state, binding, the check (live), the label
    POST /dash/install                  register one device, or a manufacturer's CSV (a file)
    POST /dash/install/{id}             bind, start, cancel, replace, rotate, decommission
                                        (the last three only with confirm=yes; without it the
                                        page asks first), then 303 back to the device
    GET  /dash/install/checks/{id}/live server-sent events: `check` with the check's part as
                                        HTML, at once and on every change, until it ends

Everything goes through the facade's scoped methods with the signed-in Principal: a device
outside the installer's units is "not found" and shows nothing of it. POSTs from another
origin are refused, as on every dashboard form. No page ever shows a device key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.datastructures import UploadFile

from api import cli_devices_en, cli_devices_zh
from api.v1 import provision_words_en, provision_words_zh
from api.v1.auth import client_address
from api.v1.provisioning import CheckId
from api.web.pages import KEEPALIVE_S, Pages, _check_origin, _form, _principal, _Refused
from api.web.words import Words
from gateway.application import (
    CHECK_KEYS,
    AccessError,
    Application,
    BatchRefusedError,
    CheckEvent,
    DeviceAdminError,
    InstallCheck,
    NotRunningError,
    Principal,
    ScopedDevice,
)
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

ACTIONS = ("bind", "start", "cancel", "replace", "rotate", "decommission")
CONFIRMED = ("replace", "rotate", "decommission")
"""Actions the page asks about once more before doing them."""
DONE = (*ACTIONS, "register")
KINDS: tuple[str, ...] = ("call_box", "water_meter")
BATCH_MAX_BYTES = 2_000_000
"""The largest CSV file accepted (the API's limit)."""
HOUSEHOLDS_MAX = 200
"""The most households the binding list offers."""
UNITS_MAX = 500
QUEUE_MAX = 64
POLL_S = 2.0
"""Without the running gateway's events (an HTTP server alone), the live part reads the
check this often instead."""
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")

Signed = Callable[[Request], Awaitable[Principal | Response]]
Refuse = Callable[[Request, Principal | None, _Refused], HTMLResponse]


def _require(ok: bool, key: str, **params: object) -> None:
    """_Refused (400, the words `key`) unless `ok`."""
    if not ok:
        raise _Refused(400, key, **params)


def _typed_id(text: str | None) -> str | None:
    """A device id as typed or pasted: the label prints it in groups of four."""
    joined = "".join((text or "").split())[:64]
    return joined or None


def grouped(device_id: str) -> str:
    """b1da 0000 0000 00c1: the id in fours, as the label prints it."""
    return " ".join(device_id[i : i + 4] for i in range(0, len(device_id), 4))


def device_error(t: Words, exc: DeviceAdminError) -> str:
    """A device change refused, in the reader's words (those of `bidao device`)."""
    table = cli_devices_zh.TEXT if t.lang == "zh" else cli_devices_en.TEXT
    text = table.get(f"err_{exc.code}")
    if text is None:
        return t("inst_refused", why=str(exc))
    try:
        return text.format(**exc.params)
    except (KeyError, IndexError):
        return t("inst_refused", why=str(exc))


def key_names(t: Words, keys: tuple[str, ...] | list[str]) -> str:
    """绿键（呼叫）、点踩键 / green (call), thumbs-down."""
    words = provision_words_zh if t.lang == "zh" else provision_words_en
    names: dict[str, str] = words.KEYS
    separator: str = words.SEPARATOR
    return separator.join(names.get(k, k) for k in keys)


def check_state(check: InstallCheck | None) -> tuple[str, str | None]:
    """The device's state as its newest check leaves it: active, checking or pending (why)."""
    if check is None:
        return "pending", "never_checked"
    if check.state == "running":
        return "checking", None
    if check.state == "passed":
        return "active", None
    return "pending", check.reason


def state_words(t: Words, check: InstallCheck | None) -> tuple[str, str, str | None]:
    """(state, its word, the reason in words or None)."""
    state, reason = check_state(check)
    why = None
    if reason is not None:
        missing = key_names(t, list(check.keys_missing)) if check else ""
        why = t(f"inst_reason_{reason}", missing=missing)
    return state, t(f"inst_state_{state}"), why


def check_context(pages: Pages, t: Words, check: InstallCheck) -> dict[str, Any]:
    """What the check's part shows: each key ticked or waiting, the readings, the outcome."""
    first: dict[str, float] = {}
    for step in check.steps:
        first.setdefault(step.what, step.at)
    keys = [
        (k, key_names(t, [k]), first.get(k))
        for k in (CHECK_KEYS if check.kind == "call_box" else ())
    ]
    outcome = None
    if check.state == "passed":
        outcome = t("inst_passed")
    elif check.state == "failed":
        outcome = {
            "missing_keys": t("inst_failed_keys", missing=key_names(t, list(check.keys_missing))),
            "no_reading": t("inst_failed_no_reading"),
            "volume_not_rising": t("inst_failed_volume"),
        }.get(check.reason or "", t("inst_failed_no_reading"))
    elif check.state == "cancelled":
        outcome = t("inst_restarted" if check.reason == "restarted" else "inst_cancelled")
    state, state_word, why = state_words(t, check)
    return {
        "check": check,
        "keys": keys,
        "readings": list(check.readings),
        "outcome": outcome,
        "until": pages.local(check.ends_at, "%H:%M"),
        "clock": lambda at: pages.local(at, "%H:%M:%S"),
        "state": state,
        "state_word": state_word,
        "why": why,
    }


def install_routes(  # noqa: PLR0915 - one closure per route
    router: APIRouter,
    application: Application,
    pages: Pages,
    signed_in: Signed,
    refused: Refuse,
) -> None:
    """Add the installers' page to the dashboard's router."""

    def not_found(request: Request, principal: Principal, device_id: str) -> HTMLResponse:
        """Nothing of a device outside the reader's units, and the way back to look again."""
        t = pages.words(request)
        application.count_api_refusal("not_found")
        return pages.render(
            request,
            "refused.html",
            principal,
            404,
            nav="install",
            message=t("inst_not_found", device=device_id[:40]),
            back_href="/dash/install",
            back_text=t("inst_back"),
        )

    async def replacement(principal: Principal, new_id: str) -> str:
        """The new box's id as stored, or _Refused naming it when it is not one of theirs."""
        try:
            return (await application.scoped_device(principal, new_id)).device.device_id
        except DeviceAdminError:
            raise _Refused(400, "inst_bad_id", device=new_id[:40]) from None
        except AccessError:
            raise _Refused(404, "inst_not_found", device=new_id[:40]) from None

    def refusal(exc: _Refused) -> None:
        """Count a form refused (the API's counter, by the same reasons)."""
        reason = {"err_cross_origin": "cross_site", "err_too_large": "too_large"}
        application.count_api_refusal(reason.get(exc.key, "bad_input"))

    async def device_page(
        request: Request,
        principal: Principal,
        device_id: str | None,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        t = pages.words(request)
        context: dict[str, Any] = {
            "done": None,
            "error": None,
            "errors": [],
            "confirm": None,
            "found": None,
            "query": device_id or "",
            "minutes": max(1, round(application.settings.provisioning.install_check_s / 60)),
            "kinds": KINDS,
            "units": [],
            "unit_names": {},
            "grouped": grouped,
            "register_open": False,
        }
        if principal.may("bind_devices"):
            units = await application.scoped_units(principal)
            context["units"] = sorted(units, key=lambda u: u.code)[:UNITS_MAX]
            context["unit_names"] = {u.code: u.name for u in units}
        if device_id:
            try:
                scoped = await application.scoped_device(principal, device_id)
                context |= await device_context(t, principal, scoped)
            except DeviceAdminError:  # not an id at all: say so beside the finder
                context["error"] = t("inst_bad_id", device=device_id[:40])
                status = 400
                application.count_api_refusal("bad_input")
            except AccessError:
                return not_found(request, principal, device_id)
        context |= extra
        return pages.render(request, "install.html", principal, status, nav="install", **context)

    async def device_context(
        t: Words, principal: Principal, scoped: ScopedDevice
    ) -> dict[str, Any]:
        device = scoped.device
        _, _, checks = await application.scoped_install_state(principal, device.device_id)
        latest = checks[0] if checks else None
        state, state_word, why = state_words(t, latest)
        household = None
        if device.household_code is not None:
            with contextlib.suppress(AccessError, GatewayError):
                household = await application.scoped_household(principal, device.household_code)
        households = []
        if device.household_code is None and device.enabled and principal.may("bind_devices"):
            page = await application.scoped_households(
                principal, unit=scoped.unit_code, limit=HOUSEHOLDS_MAX
            )
            households = page.items
        return {
            "found": scoped,
            "device": device,
            "state": state,
            "state_word": state_word,
            "why": why,
            "household": household,
            "households": households,
            "latest": check_context(pages, t, latest) if latest else None,
        }

    @router.get("/dash/install")
    async def install(
        request: Request, device: str | None = None, done: str | None = None
    ) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        device = _typed_id(device)
        return await device_page(request, principal, device, done=done if done in DONE else None)

    @router.post("/dash/install")
    async def register(request: Request) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        t = pages.words(request)
        client = client_address(request)
        try:
            _check_origin(request)
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                return await batch(request, principal, t, client)
            form = await _form(request)
            device_id = form.get("device_id", "").strip()
            key = form.get("key", "").strip()
            kind = form.get("kind", "call_box")
            unit = form.get("unit_code") or None
            label = (form.get("label") or "").strip()[:64] or None
            _require(kind in KINDS, "err_bad_form", what="kind")
            _require(bool(_HEX32.match(key)), "inst_bad_key")
            _require(unit is not None or principal.sees_everything, "inst_no_unit")
            scoped = await application.scoped_register_device(
                principal,
                device_id,
                kind,  # type: ignore[arg-type]  # checked against the Literal's values
                bytes.fromhex(key),
                unit,
                label,
                client,
            )
        except _Refused as exc:
            refusal(exc)
            return await device_page(
                request, principal, None, exc.status, error=t(exc.key), register_open=True
            )
        except AccessError as exc:
            application.count_api_refusal(exc.code)
            key = "inst_no_unit" if exc.code == "bad_input" else "err_forbidden"
            return await device_page(
                request, principal, None, 403, error=t(key), register_open=True
            )
        except DeviceAdminError as exc:
            application.count_api_refusal("device_refused")
            return await device_page(
                request, principal, None, 409, error=device_error(t, exc), register_open=True
            )
        return RedirectResponse(
            f"/dash/install?device={scoped.device.device_id}&done=register", status_code=303
        )

    async def batch(request: Request, principal: Principal, t: Words, client: str) -> Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > BATCH_MAX_BYTES + 4096:
            raise _Refused(413, "err_too_large")
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("csv")
            unit = form.get("unit_code")
            kind = form.get("kind", "call_box")
            if not isinstance(upload, UploadFile):
                raise _Refused(400, "inst_no_file")
            raw = await upload.read(BATCH_MAX_BYTES + 1)
        if len(raw) > BATCH_MAX_BYTES:
            raise _Refused(413, "err_too_large")
        if not raw.strip():
            raise _Refused(400, "inst_no_file")
        if not isinstance(kind, str) or kind not in KINDS:
            raise _Refused(400, "err_bad_form", what="kind")
        unit_code = unit if isinstance(unit, str) and unit else None
        if unit_code is None and not principal.sees_everything:
            raise _Refused(400, "inst_no_unit")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _Refused(400, "err_bad_form", what="encoding (UTF-8)") from None
        try:
            records = await application.scoped_register_batch(
                principal,
                text,
                unit_code,
                kind,  # type: ignore[arg-type]  # checked against the Literal's values
                client,
            )
        except BatchRefusedError as exc:
            application.count_api_refusal("batch_refused")
            words = provision_words_zh if t.lang == "zh" else provision_words_en
            max_rows = application.settings.provisioning.batch_max_rows
            rows = [
                words.ROW[p.code].format(
                    line=p.line, serial=p.serial, other=p.other_line or "", max=max_rows
                )
                for p in exc.rows
            ]
            return await device_page(
                request,
                principal,
                None,
                422,
                error=t("inst_batch_refused", count=len(rows)),
                errors=rows,
                register_open=True,
            )
        devices = ", ".join(r.device_id for r in records)
        return await device_page(
            request,
            principal,
            None,
            batch_done=t("inst_batch_done", count=len(records), devices=devices),
        )

    @router.post("/dash/install/{device_id}")
    async def act(request: Request, device_id: str) -> Response:  # noqa: PLR0911, PLR0912 - one answer per action and refusal
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        t = pages.words(request)
        client = client_address(request)
        target = device_id
        try:
            _check_origin(request)
            form = await _form(request)
            action = form.get("action", "")
            _require(action in ACTIONS, "err_bad_form", what="action")
            new_id = _typed_id(form.get("new_device_id")) or ""
            _require(action != "replace" or bool(new_id), "err_bad_form", what="new_device_id")
            if action in CONFIRMED and form.get("confirm") != "yes":
                # Ask once more, with what will happen, before doing it.
                await application.scoped_device(principal, device_id)
                if action == "replace":
                    new_id = await replacement(principal, new_id)
                return await device_page(
                    request, principal, device_id, confirm={"action": action, "new": new_id}
                )
            if action == "bind":
                household = form.get("household", "")
                _require(bool(household), "err_bad_form", what="household")
                await application.scoped_attach_device(principal, device_id, household, client)
            elif action == "start":
                await application.scoped_start_check(principal, device_id, client)
            elif action == "cancel":
                check = form.get("check", "")
                _require(check.isdigit(), "err_bad_form", what="check")
                await application.scoped_cancel_check(principal, int(check), client)
            elif action == "replace":
                _, new = await application.scoped_replace_device(
                    principal, device_id, new_id, client
                )
                target = new.device_id
            elif action == "rotate":
                await application.scoped_rotate_key(principal, device_id, client)
            else:
                await application.scoped_remove_device(principal, device_id, client)
        except _Refused as exc:
            refusal(exc)
            return await device_page(
                request, principal, device_id, exc.status, error=t(exc.key, **exc.params)
            )
        except AccessError as exc:
            if exc.code == "forbidden":
                application.count_api_refusal("forbidden")
                return refused(request, principal, _Refused(403, "err_forbidden"))
            if exc.params.get("what") == "household":
                application.count_api_refusal("not_found")
                return await device_page(
                    request, principal, device_id, 404, error=t("err_not_found_household")
                )
            return not_found(request, principal, device_id)
        except NotRunningError:
            application.count_api_refusal("not_running")
            return await device_page(
                request, principal, device_id, 503, error=t("inst_not_running")
            )
        except DeviceAdminError as exc:
            log.info("installer's %s on %s refused: %s", form.get("action"), device_id, exc)
            application.count_api_refusal("device_refused")
            return await device_page(request, principal, device_id, 409, error=device_error(t, exc))
        # The page opens at the check: the next step after binding, and the keys to watch.
        anchor = "#check" if action in ("bind", "start", "cancel") else ""
        return RedirectResponse(
            f"/dash/install?device={target}&done={action}{anchor}", status_code=303
        )

    @router.get("/dash/install/checks/{check_id}/live")
    async def live(request: Request, check_id: CheckId) -> Response:
        principal = await _principal(request)
        if principal is None:
            return Response(status_code=401)
        t = pages.words(request)
        queue: asyncio.Queue[InstallCheck] = asyncio.Queue(QUEUE_MAX)

        def heard(event: CheckEvent) -> None:
            if event.check.id == check_id:
                if queue.full():  # each event carries the whole check: the newest will do
                    queue.get_nowait()
                queue.put_nowait(event.check)

        unsubscribe: Callable[[], None] | None = None
        with contextlib.suppress(NotRunningError):
            unsubscribe = application.subscribe_install_checks(heard)
        try:
            current = await application.scoped_install_check(principal, check_id)
        except (AccessError, GatewayError):
            if unsubscribe is not None:
                unsubscribe()
            application.count_api_refusal("not_found")
            return Response(status_code=404)

        def event(check: InstallCheck) -> bytes:
            html = pages.env.get_template("_check.html").render(
                t=t, **check_context(pages, t, check)
            )
            data = "\n".join(f"data: {line}" for line in html.strip().splitlines())
            return f"event: check\n{data}\n\n".encode()

        async def following() -> InstallCheck:
            if unsubscribe is not None:
                return await queue.get()
            while True:  # no events in this process: read the check now and then
                await asyncio.sleep(POLL_S)
                check = await application.scoped_install_check(principal, check_id)
                if check != current:
                    return check

        async def stream() -> AsyncIterator[bytes]:
            nonlocal current
            try:
                yield b"retry: 2000\n\n" + event(current)
                while current.state == "running":
                    try:
                        async with asyncio.timeout(KEEPALIVE_S):
                            current = await following()
                    except TimeoutError:
                        if await _principal(request) is None:  # signed out meanwhile
                            return
                        yield b": keepalive\n\n"
                        continue
                    yield event(current)
            finally:
                if unsubscribe is not None:
                    unsubscribe()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
