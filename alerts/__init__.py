"""Notifications: what is sent to whom (the outbox row), templates per language, providers."""

from alerts.notification import Channel, Notification
from alerts.templates import TemplateError, render

__all__ = ["Channel", "Notification", "TemplateError", "render"]
