"""The stance target's names: what counts as naming a Western actor."""

from __future__ import annotations

import pytest

from classify.learners.west import names_west


@pytest.mark.parametrize("text", [
    "Russian Ambassador to the U.S. met the Treasury Secretary.",
    "Американское посольство в Киеве не позволило дать интервью.",
    "Россия ответит на решение немецких властей.",
    "We are perplexed by the decision of the @EUCouncil.",
    "Should we expect that @eu_eeas condemns the blockade?",
    "The #UnitedStates blocked the statement.",
    "Ready to work with whoever wins #USelections.",
    "Activities of Pentagon's biological units near our borders.",
    "Глава МИД ФРГ Бербок прибыла в Китай.",
    "NATO drills 🇺🇸",
])
def test_names_a_western_actor(text):
    assert names_west([text])


@pytest.mark.parametrize("text", [
    "#OTD in 1944 the #USSR liberated Kiev.",
    "Российские войска закрепились в западной части поселка.",
    "A concert in Kazan; us and our west wing.",
    "Даниил Медведев выиграл турнир.",
])
def test_names_none(text):
    assert not names_west([text])
