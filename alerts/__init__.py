"""Notifications: what is sent to whom (the outbox row), templates per language, providers."""

from alerts.notification import Channel, Notification
from alerts.templates import TemplateError, fit_sms, fits_sms, render, render_digest

__all__ = [
    "Channel",
    "Notification",
    "TemplateError",
    "fit_sms",
    "fits_sms",
    "render",
    "render_digest",
]
