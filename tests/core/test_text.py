"""Whether free text has anything a reader can see."""

from __future__ import annotations

import pytest

from core.text import has_visible_text


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \t\n\u3000\u00a0",
        "\u200b\ufeff",
        "\u200c\u200d\u2060\u00ad\u202e",
        "\u3164\u2800",
        "\u0301",
        "\U000e0041",
    ],
)
def test_invisible_text_is_empty(text: str) -> None:
    assert not has_visible_text(text)


@pytest.mark.parametrize("text", ["窗口", "\u200b a", "1", "。", "😀", "\ufeff办"])
def test_one_visible_character_is_text(text: str) -> None:
    assert has_visible_text(text)
