"""The stance target's names: what counts as naming a Western actor (``classify.learners.west``)."""

from __future__ import annotations

import pytest

from classify.learners.west import names_west


@pytest.mark.parametrize("text", [
    "Talks with NATO on security guarantees.",
    "Переговоры с Вашингтоном зашли в тупик.",
    "Sanctions imposed by the EU are illegal.",
    "The collective West keeps arming Kiev.",
    "Meeting with the Ambassador 🇩🇪",
    "Меркель и Макрон обсудили Минские соглашения.",
    "The U.S. Secretary of State arrived.",
    "U.S.-Russia talks resumed.",
])
def test_names_a_western_actor(text):
    assert names_west([text])


@pytest.mark.parametrize("text", [
    "A concert in Kazan; us and our west wing.",
    "Москва и Пекин подписали соглашение.",
    "Russia and India held talks within the SCO.",
])
def test_names_none(text):
    assert not names_west([text])


def test_any_paragraph_counts():
    assert names_west(["Nothing here.", "NATO expanded east."]) and not names_west([])
