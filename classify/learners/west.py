"""Whether a post names a Western actor: the codebook's stance target, as patterns.

The codebook's stance is an evaluation of "Western governments and alliances (the US, the EU and
European states, NATO, the G7, the collective West) and their leaders"; a post that names none of
them cannot evaluate them, so its stance is ``none``. The patterns list those actors in English and
Russian: names, adjectives, capitals, leaders of the period of the data, and flag emoji.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..codebook import Codebook

_EN = (r"US|USA|United States|America\w*|Washington|EU|European Union|Europe\w*|NATO|G7|West\w*|UK|Britain|"
       r"British|London|France|French|Paris|German\w*|Berlin|Ital\w*|Rome|Spain|Spanish|Madrid|Norw\w*|Ireland|Irish|"
       r"Netherlands|Dutch|Belgi\w*|Brussels|Austria\w*|Swed\w*|Finland|Finnish|Denmark|Danish|Poland|Polish|Greece|"
       r"Greek|Portug\w*|Cyprus|Cypriot|Canad\w*|Australia\w*|Switzerland|Swiss|Iceland\w*|Luxembourg|Malta|Czech\w*|"
       r"Slovak\w*|Hungar\w*|Romania\w*|Bulgaria\w*|Croatia\w*|Sloven\w*|Eston\w*|Latvi\w*|Lithuan\w*|Vatican|Trump|"
       r"Biden|Macron|Merkel|Scholz|Johnson|Blinken|Pompeo|Borrell|Stoltenberg|Anglo-Saxon\w*")
_RU = (r"США|Вашингтон\w*|Америк\w*|ЕС|Евросоюз\w*|Европ\w*|НАТО|Запад\w*|Великобритани\w*|Британ\w*|Лондон\w*|"
       r"Франци\w*|Париж\w*|Германи\w*|Берлин\w*|Итали\w*|Польш\w*|Финлянди\w*|Швеци\w*|Норвеги\w*|Байден\w*|Трамп\w*|"
       r"Макрон\w*|Шольц\w*")
_FLAGS = "🇺🇸|🇪🇺|🇬🇧|🇫🇷|🇩🇪|🇮🇹|🇪🇸|🇳🇴|🇮🇪|🇳🇱|🇧🇪|🇦🇹|🇸🇪|🇫🇮|🇩🇰|🇵🇱|🇬🇷|🇵🇹|🇨🇾|🇨🇦|🇦🇺|🇨🇭|🇮🇸"
WEST = re.compile(rf"\b(?:{_EN}|{_RU})\b|\bU\.S\.|{_FLAGS}")  # "U.S." ends in a dot: no closing \b
"""Case-sensitive on purpose: "US", "EU" and "West" are names, "us", "eu" and "west" are not."""


def names_west(paragraphs: Sequence[str]) -> bool:
    """True when any paragraph names a Western actor."""
    return any(WEST.search(p) for p in paragraphs)


def gate_stance(S: np.ndarray, posts: Sequence[Sequence[str]], codebook: Codebook) -> np.ndarray:
    """Stance probabilities with the rows of posts that name no Western actor set to certain ``none``."""
    none_index = codebook.stances.index(codebook.no_stance)
    out = S.copy()
    absent = np.array([not names_west(ps) for ps in posts], dtype=bool)
    out[absent] = 0.0
    out[absent, none_index] = 1.0
    return out
