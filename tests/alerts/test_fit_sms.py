"""fit_sms keeps the longest prefix that fits with its ellipsis, in one pass over the text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import fit_sms, fits_sms, templates
from alerts.templates import ELLIPSIS


def one_character_at_a_time(text: str) -> str:
    """The obvious definition: drop the last character until the text and ellipsis fit."""
    if fits_sms(text):
        return text
    cut = len(text)
    while cut > 0 and not fits_sms(text[:cut] + ELLIPSIS):
        cut -= 1
    return text[:cut] + ELLIPSIS


TEXTS = st.text(alphabet=st.sampled_from(["a", "{", "€", "张", "😀", "\u3002", " "]), max_size=600)


@given(TEXTS)
def test_same_as_trimming_one_character_at_a_time(text: str) -> None:
    assert fit_sms(text) == one_character_at_a_time(text)


def test_a_ten_thousand_character_name_is_cut_to_three_parts() -> None:
    text = "【必到】" + "欧阳" * 5_000 + "，桥元村三组，按下了呼叫键。"
    fitted = fit_sms(text)
    assert fits_sms(fitted)
    assert fitted.endswith(ELLIPSIS)
    assert len(fitted) == 201
    assert text.startswith(fitted.removesuffix(ELLIPSIS))


def test_characters_outside_the_bmp_never_split_the_limit() -> None:
    fitted = fit_sms("😀" * 500)
    assert fitted == "😀" * 100 + ELLIPSIS
    assert fits_sms(fitted)


def test_a_long_text_is_examined_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The work grows with the text, not its square (a quadratic trim once blocked 2.5 s)."""
    examined = 0
    units = templates._ucs2_units

    def counting(text: str) -> int:
        nonlocal examined
        examined += len(text)
        return units(text)

    monkeypatch.setattr(templates, "_ucs2_units", counting)
    text = "【必到】" + "欧阳" * 5_000 + "，桥元村三组，按下了呼叫键。"
    fitted = fit_sms(text)
    assert fits_sms(fitted)
    assert examined <= 2 * len(text)
