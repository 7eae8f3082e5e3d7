"""Errors as JSON: `{"error": code, "message": "中文 / English"}`, with an HTTP status.

Every refusal the facade raises (AccessError, TicketError, WaterRequestError,
DeviceAdminError, ...) is turned into one of the codes in api/v1/words_*.py, counted in
`bidao_api_refused{reason}`, and never becomes a traceback or a 500. Anything else is
logged and answered as `internal`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.v1.words_en import TEXT as EN
from api.v1.words_zh import TEXT as ZH
from gateway.application import (
    AccessError,
    Application,
    ApplicationError,
    DeviceAdminError,
    NoSuchTicketError,
    NotAnAlarmError,
    NotRunningError,
    OutcomeError,
    TicketError,
    WaterRequestError,
)
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

STATUS: dict[str, int] = {
    "not_signed_in": 401,
    "session_expired": 401,
    "bad_token": 401,
    "bad_credentials": 401,
    "rate_limited": 429,
    "disabled": 403,
    "forbidden": 403,
    "cross_site": 403,
    "no_contact": 403,
    "not_found": 404,
    "bad_input": 422,
    "ticket_conflict": 409,
    "not_an_alarm": 409,
    "bad_outcome": 422,
    "not_running": 503,
    "water_refused": 409,
    "device_refused": 409,
    "no_metrics": 503,
    "internal": 500,
}


class ErrorBody(BaseModel):
    """What every refused request answers."""

    error: str
    """A stable code a program can branch on (not_signed_in, forbidden, not_found, ...)."""
    message: str
    """What a person can do about it: Simplified Chinese, then " / ", then English."""


class ApiError(Exception):
    """A refusal with its code and the values its message names."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = {k: str(v) for k, v in params.items()}


def message(code: str, params: dict[str, str]) -> str:
    """The Chinese message, then the English one, with `params` filled in."""
    values: dict[str, Any] = {"detail": "", "what": "", "key": "", "retry_after_s": "", **params}
    return f"{ZH[code].format(**values)} / {EN[code].format(**values)}"


def error_response(code: str, params: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for a refusal."""
    params = params or {}
    headers = {"Cache-Control": "no-store"}
    if code == "rate_limited" and params.get("retry_after_s"):
        headers["Retry-After"] = params["retry_after_s"]
    if STATUS[code] == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="bidao"'
    return JSONResponse(
        {"error": code, "message": message(code, params)},
        status_code=STATUS[code],
        headers=headers,
    )


def translate(exc: GatewayError) -> ApiError:  # noqa: PLR0911 - one answer per error type
    """The API refusal for an error the facade raised."""
    match exc:
        case AccessError():
            code = exc.code if exc.code in STATUS else "bad_input"
            return ApiError(code, detail=str(exc), **exc.params)
        case NoSuchTicketError():
            return ApiError("not_found", what="ticket", key=exc.ticket_id)
        case NotAnAlarmError():
            return ApiError("not_an_alarm")
        case OutcomeError():
            return ApiError("bad_outcome", detail=str(exc))
        case TicketError():
            return ApiError("ticket_conflict", detail=str(exc))
        case WaterRequestError() if exc.reason == "unknown_household":
            return ApiError("not_found", what="household", key=exc.household)
        case WaterRequestError():
            return ApiError("water_refused", detail=f"{exc.reason}: {exc}")
        case DeviceAdminError():
            return ApiError("device_refused", detail=str(exc))
        case NotRunningError():
            return ApiError("not_running")
        case ApplicationError():
            return ApiError("bad_input", detail=str(exc))
        case _:
            return ApiError("internal")


def install_error_handlers(app: FastAPI, application: Application) -> None:
    """Answer every refusal as ErrorBody JSON, and count it."""

    def refuse(code: str, params: dict[str, str]) -> JSONResponse:
        application.count_api_refusal(code)
        return error_response(code, params)

    async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return refuse(exc.code, exc.params)

    async def on_gateway_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        api = translate(exc)
        if api.code == "internal":
            log.error("API request failed: %s: %s", type(exc).__name__, exc)
        return refuse(api.code, api.params)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith(API_PREFIX):
            return await request_validation_exception_handler(request, exc)
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return refuse("bad_input", {"detail": "; ".join(parts)})

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith(API_PREFIX):
            return await http_exception_handler(request, exc)  # the webhooks keep theirs
        if exc.status_code == 404:
            return refuse("not_found", {"what": "path", "key": ""})
        if exc.status_code == 405:
            response = refuse("bad_input", {"detail": "method not allowed"})
            response.status_code = 405
            return response
        response = refuse("bad_input", {"detail": str(exc.detail)})
        response.status_code = exc.status_code
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(API_PREFIX):
            return PlainTextResponse("Internal Server Error", status_code=500)
        log.error("API request failed unexpectedly: %s: %s", type(exc).__name__, exc)
        return refuse("internal", {})

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the refusals a route can give."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in ("not_signed_in", "bad_input", "cross_site", *codes):
        status = STATUS[code]
        out.setdefault(status, {"model": ErrorBody, "description": code})
        if code not in out[status]["description"]:
            out[status]["description"] += f", {code}"
    return out
