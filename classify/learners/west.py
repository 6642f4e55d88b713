"""Whether a post names a Western actor: the codebook's stance target, as patterns.

The codebook's stance is an evaluation of "Western governments and alliances (the US, the EU and
European states, NATO, the G7, the collective West) and their leaders"; a post that names none of
them cannot evaluate them, so its stance is ``none``. The patterns list those actors in English and
Russian: names, adjectives, capitals, institutions, leaders of the period of the data, handles and
hashtags that begin with a name, and flag emoji.
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
       r"Biden|Macron|Merkel|Scholz|Johnson|Blinken|Pompeo|Borrell|Stoltenberg|Anglo-Saxon\w*|"
       r"Pentagon|CIA|FBI|White House|State Department|State Dept|Secretary of State|Congress|Bundestag|Downing Street|"
       r"Obama|Clinton|Hillary|Pelosi|Nuland|Harris|Sunak|Starmer|Rutte|von der Leyen|Kallas|Orban|Fico|Baerbock")
_RU = (r"США|Вашингтон\w*|Америк\w*|ЕС|Евросоюз\w*|Европ\w*|НАТО|Запад\w*|Великобритани\w*|Британ\w*|Лондон\w*|"
       r"Франци\w*|Париж\w*|Германи\w*|Берлин\w*|Итали\w*|Польш\w*|Финлянди\w*|Швеци\w*|Норвеги\w*|Байден\w*|Трамп\w*|"
       r"Макрон\w*|Шольц\w*|"
       r"ФРГ|Испани\w*|Нидерланд\w*|Бельги\w*|Брюссел\w*|Австри\w*|Дани(?:я|и|ю|ей)|Чехи\w*|Венгри\w*|Румыни\w*|Болгари\w*|"
       r"Словаки\w*|Греци\w*|Португали\w*|Швейцари\w*|Канад\w*|Австрали\w*|Эстони\w*|Латви\w*|Литв\w*|Прибалтик\w*|"
       r"Пентагон\w*|Госдеп\w*|ЦРУ|ФБР|Конгресс\w* США|Бундестаг\w*|Еврокомисси\w*|"
       r"Блинкен\w*|Помпео|Боррел\w*|Столтенберг\w*|Рютте|Фон дер Ляйен|Каллас|Меркель|Стармер\w*|Сунак\w*|Орбан\w*|"
       r"Фицо|Харрис|Обам\w*|Клинтон|Нуланд|Бербок")
# lower-case adjectives and the dotted abbreviation, which the case-sensitive names above miss
_LOWER = (r"(?i:американск\w*|европейск\w*|британск\w*|английск\w*|немецк\w*|германск\w*|французск\w*|"
          r"итальянск\w*|польск\w*|натовск\w*|канадск\w*|испанск\w*|нидерландск\w*|бельгийск\w*|австрийск\w*|"
          r"шведск\w*|финск\w*|норвежск\w*|датск\w*|чешск\w*|венгерск\w*|румынск\w*|словацк\w*|прибалтийск\w*|"
          r"эстонск\w*|латвийск\w*|литовск\w*)")
# handles and hashtags that begin with a name: @EUCouncil, @eu_eeas, #USelections, #UnitedStates, @SecPompeo
_TAGS = r"[@#](?:US(?!SR)|EU|eu_|NATO|UK|UnitedStates|America|Europe|Sec(?:Pompeo|Blinken|State|Def)|StateDept|WhiteHouse)"
_FLAGS = "🇺🇸|🇪🇺|🇬🇧|🇫🇷|🇩🇪|🇮🇹|🇪🇸|🇳🇴|🇮🇪|🇳🇱|🇧🇪|🇦🇹|🇸🇪|🇫🇮|🇩🇰|🇵🇱|🇬🇷|🇵🇹|🇨🇾|🇨🇦|🇦🇺|🇨🇭|🇮🇸"
WEST = re.compile(rf"\b(?:{_EN}|{_RU}|{_LOWER})\b|\bU\.S\.|{_TAGS}|{_FLAGS}")
"""Case-sensitive on purpose: "US", "EU" and "West" are names, "us", "eu" and "west" are not; only the Russian
adjectives, written in lower case, match in any case ("американское посольство")."""


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
