"""Rendering templates kept in one module per language (alerts/locales)."""

from __future__ import annotations

import string
from collections.abc import Mapping

from alerts.locales import en, zh_cn

CATALOGS: dict[str, Mapping[str, str]] = {"zh-CN": zh_cn.TEMPLATES, "en": en.TEMPLATES}
DEFAULT_LANGUAGE = "zh-CN"


class TemplateError(Exception):
    """Unknown template or a parameter missing."""


def render(template: str, language: str, params: Mapping[str, str]) -> str:
    """The text of `template` in `language` (Chinese if the language is not available)."""
    catalog = CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])
    try:
        text = catalog[template]
    except KeyError:
        raise TemplateError(f"unknown template {template!r}") from None
    try:
        return string.Template(text).substitute(params)
    except KeyError as exc:
        raise TemplateError(f"template {template!r} needs parameter {exc}") from None
