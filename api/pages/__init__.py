"""Texts of the pages people read, one module per language: Chinese first, English beneath."""

from __future__ import annotations

from api.pages import en, zh_cn

LANGUAGES = (zh_cn.TEXTS, en.TEXTS)
"""In the order they are shown."""


def texts(key: str, **params: object) -> tuple[str, str]:
    """The text `key` in each language, in order, with `params` filled in (not escaped)."""
    zh, english = (table[key].format(**params) for table in LANGUAGES)
    return zh, english
