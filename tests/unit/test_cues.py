"""Cue matching: English and Russian sentences written from the codebook fire the expected cues,
look-alikes do not, the prefilter changes no result, and the cue rule has the model's output shape."""

from __future__ import annotations

import re

import numpy as np
import pytest

from classify.codebook import Codebook
from classify.errors import ConfigError
from classify.learners.cues import YO, CueMatcher, cue_rule_predict, required_literals, stance_from_frames

# (label, sentence): each sentence must fire the label's cues. Written from the codebook's
# definitions and cue words, not taken from the sample posts.
POSITIVE = [
    ("cyber", "Russia and ASEAN held consultations on international information security."),
    ("cyber", "The UN Convention against Cybercrime opens for signature in Hanoi."),
    ("cyber", "The OEWG agreed on a permanent mechanism."),
    ("cyber", "We discussed threats in the use of ICTs and norms of responsible behaviour."),
    ("cyber", "Every state has the right to digital sovereignty."),
    ("cyber", "Состоялись консультации по международной информационной безопасности."),
    ("cyber", "Конвенция ООН против киберпреступности открыта для подписания."),
    ("cyber", "Обсудили угрозы в сфере использования ИКТ."),
    ("cyber", "Россия отстаивает цифровой суверенитет."),
    ("cyber", "Прошло заседание Рабочей группы открытого состава по МИБ."),
    ("energy", "Rosatom is building the country's first nuclear power plant."),
    ("energy", "Russia remains a reliable supplier of oil and gas to Asia."),
    ("energy", "Energy security of the region was discussed."),
    ("energy", "Attacks on energy infrastructure must stop."),
    ("energy", "LNG exports reached a record."),
    ("energy", "Росатом построит АЭС."),
    ("energy", "Поставки газа в Китай растут."),
    ("energy", "Экспорт нефти вырос."),
    ("energy", "Стороны обсудили энергетическую безопасность."),
    ("energy", "Сотрудничество в энергетике развивается."),
    ("ukraine", "The special military operation will achieve its goals."),
    ("ukraine", "Kiev keeps receiving Western weapons."),
    ("ukraine", "Zelensky refused to negotiate."),
    ("ukraine", "The root causes of the conflict must be eliminated."),
    ("ukraine", "The Ukraine crisis was on the agenda."),
    ("ukraine", "Задачи специальной военной операции будут выполнены."),
    ("ukraine", "Киевский режим отверг переговоры."),
    ("ukraine", "Участники СВО получат поддержку."),
    ("ukraine", "ВСУ обстреляли Донецк."),
    ("ukraine", "Ситуация на Украине обсуждалась."),
    ("brics", "The BRICS summit in Kazan welcomed partner countries."),
    ("brics", "The New Development Bank will finance the project."),
    ("brics", "Саммит БРИКС прошёл в Казани."),
    ("brics", "Новый банк развития выделит кредит."),
    ("multipolar_order", "A multipolar world order is taking shape."),
    ("multipolar_order", "The countries of the global majority stand together."),
    ("multipolar_order", "The unipolar world is a thing of the past."),
    ("multipolar_order", "Asia is home to new centres of economic growth."),
    ("multipolar_order", "Идёт формирование многополярного мироустройства."),
    ("multipolar_order", "Страны мирового большинства поддержали инициативу."),
    ("multipolar_order", "Появляются новые центры экономического роста."),
    ("western_hegemony", "The collective West tries to impose its so-called rules-based order."),
    ("western_hegemony", "Neocolonial practices must end."),
    ("western_hegemony", "This shows the double standards of Washington."),
    ("western_hegemony", "The Anglo-Saxons want to preserve the golden billion."),
    ("western_hegemony", "Коллективный Запад навязывает свой порядок, основанный на правилах."),
    ("western_hegemony", "Это неоколониальные практики."),
    ("western_hegemony", "США применяют двойные стандарты."),
    ("western_hegemony", "Эпоха гегемонии Запада уходит."),
    ("sanctions_illegitimate", "Illegal unilateral sanctions hurt the poorest."),
    ("sanctions_illegitimate", "Unilateral coercive measures violate the UN Charter."),
    ("sanctions_illegitimate", "We build a financial system immune to external pressure."),
    ("sanctions_illegitimate", "The sanctions have proven futile."),
    ("sanctions_illegitimate", "Нелегитимные односторонние санкции бьют по бедным."),
    ("sanctions_illegitimate", "Односторонние принудительные меры недопустимы."),
    ("sanctions_illegitimate", "Незаконные ограничения должны быть сняты."),
    ("western_security_threat", "NATO's eastward expansion threatens Russia."),
    ("western_security_threat", "Closed bloc mechanisms are being built in the Asia-Pacific."),
    ("western_security_threat", "Supplying long-range missiles to Kiev is a dangerous escalation."),
    ("western_security_threat", "The principle of indivisible security is violated."),
    ("western_security_threat", "A military build-up near our borders continues."),
    ("western_security_threat", "Расширение НАТО на восток угрожает безопасности."),
    ("western_security_threat", "Создаются блоковые механизмы в АТР."),
    ("western_security_threat", "Нарушен принцип неделимости безопасности."),
    ("western_security_threat", "Поставки дальнобойного оружия ведут к эскалации."),
    ("ukraine_delegitimised", "The Kiev regime resorts to terrorist methods."),
    ("ukraine_delegitimised", "Neo-Nazis shelled the city."),
    ("ukraine_delegitimised", "Ukraine was built as an anti-Russia project."),
    ("ukraine_delegitimised", "Киевский режим прибегает к террору."),
    ("ukraine_delegitimised", "Неонацисты обстреляли город."),
    ("ukraine_delegitimised", "Запад создал проект «анти-Россия»."),
    ("peace_and_dialogue", "Russia stands for a political and diplomatic settlement."),
    ("peace_and_dialogue", "We are open to dialogue with everyone."),
    ("peace_and_dialogue", "Dialogue is always better than confrontation."),
    ("peace_and_dialogue", "Another prisoner exchange took place."),
    ("peace_and_dialogue", "Russia reunited the children with their families."),
    ("peace_and_dialogue", "Россия выступает за политико-дипломатическое урегулирование."),
    ("peace_and_dialogue", "Мы за мирное урегулирование конфликта."),
    ("peace_and_dialogue", "Россия открыта к диалогу."),
    ("peace_and_dialogue", "Состоялся обмен военнопленными."),
    ("international_law", "The UN Charter must be respected in its entirety and interconnectedness."),
    ("international_law", "This is a gross violation of international law."),
    ("international_law", "We uphold sovereign equality and non-interference in internal affairs."),
    ("international_law", "The central coordinating role of the UN is indispensable."),
    ("international_law", "Устав ООН во всей его полноте и взаимосвязи."),
    ("international_law", "Это нарушение норм международного права."),
    ("international_law", "Принципы суверенного равенства и невмешательства."),
    ("reliable_partnership", "Russia has always been a reliable partner."),
    ("reliable_partnership", "Our ties rest on mutual respect."),
    ("reliable_partnership", "The comprehensive strategic partnership is flourishing."),
    ("reliable_partnership", "We support ASEAN centrality."),
    ("reliable_partnership", "Россия — надёжный партнёр."),
    ("reliable_partnership", "Отношения строятся на взаимном уважении."),
    ("reliable_partnership", "Стороны провели доверительный разговор."),
    ("reliable_partnership", "Мы развиваем стратегическое партнёрство."),
    ("historical_memory", "We mark the 80th anniversary of Victory in the Great Patriotic War."),
    ("historical_memory", "The lessons of World War II must not be forgotten."),
    ("historical_memory", "We reject any falsification of history."),
    ("historical_memory", "Happy Victory Day!"),
    ("historical_memory", "Мы помним подвиг героев Великой Отечественной войны."),
    ("historical_memory", "Итоги Второй мировой войны незыблемы."),
    ("historical_memory", "Фальсификация истории недопустима."),
    ("historical_memory", "С Днём Победы!"),
    ("civilisational_values", "We defend traditional values."),
    ("civilisational_values", "Civilisational diversity is the wealth of humanity."),
    ("civilisational_values", "Russian culture is a bridge between peoples."),
    ("civilisational_values", "Pushkin's poems are read all over the world."),
    ("civilisational_values", "Мы защищаем традиционные ценности."),
    ("civilisational_values", "Цивилизационное многообразие мира."),
    ("civilisational_values", "Русская культура объединяет народы."),
    ("civilisational_values", "С Днём народного единства!"),
]

# (label, sentence): look-alikes that must NOT fire the label.
NEGATIVE = [
    ("energy", "The delegation was full of energy."),
    ("energy", "Young people bring new energy to our relations."),
    ("energy", "Cooperation in trade, energy and culture was mentioned."),
    ("energy", "The humanitarian situation in the Gaza Strip is dire."),
    ("energy", "Ситуация в секторе Газа остаётся тяжёлой."),
    ("energy", "Гуманитарная помощь жителям Газы."),
    ("energy", "Интервью министра опубликовано в газете."),
    ("brics", "#BRICS"),
    ("brics", "#БРИКС #Россия"),
    ("ukraine_delegitimised", "Anti-Russian sanctions were extended."),
    ("ukraine_delegitimised", "Антироссийские санкции продлены."),
    ("reliable_partnership", "Содружество Независимых Государств отмечает юбилей."),
    ("historical_memory", "The party celebrated a victory in the elections."),
    ("historical_memory", "Nobody wants World War III."),
    ("western_security_threat", "Escalation in the Middle East worries everyone."),
    ("cyber", "The digital economy and smart cities were discussed."),
    ("multipolar_order", "The Global South attended the conference."),
]


@pytest.fixture(scope="module")
def cb() -> Codebook:
    return Codebook.load()


@pytest.fixture(scope="module")
def matcher(cb) -> CueMatcher:
    return CueMatcher(cb)


@pytest.mark.parametrize(("label", "sentence"), POSITIVE)
def test_sentence_fires_its_label(matcher, label, sentence):
    assert matcher.hits(sentence)[label] >= 1, f"no {label} cue in {sentence!r}"


@pytest.mark.parametrize(("label", "sentence"), NEGATIVE)
def test_look_alike_does_not_fire(matcher, label, sentence):
    assert matcher.hits(sentence)[label] == 0, f"{label} fired on {sentence!r}: {matcher.matched(sentence, label)}"


def test_every_label_is_covered_in_both_languages(cb):
    for lid in (*cb.topics, *cb.frames):
        sentences = [s for label, s in POSITIVE if label == lid]
        assert any(re.search("[а-яё]", s, re.I) for s in sentences), lid
        assert any(not re.search("[а-яё]", s, re.I) for s in sentences), lid


def test_counts_and_columns(cb, matcher):
    assert matcher.label_ids == (*cb.topics, *cb.frames)
    assert matcher.hits("BRICS and BRICS again, and the New Development Bank.")["brics"] == 3
    assert matcher.hits("Nothing to see here.") == dict.fromkeys(matcher.label_ids, 0)
    paras = ["Rosatom builds a plant.", "A multipolar world.", "Nothing."]
    hits = matcher.paragraph_hits(paras)
    assert hits.shape == (3, len(cb.topics) + len(cb.frames)) and hits.dtype == np.int64
    assert hits[0, matcher.label_ids.index("energy")] == 1
    assert hits[1, matcher.label_ids.index("multipolar_order")] == 1
    assert hits[2].sum() == 0
    assert matcher.paragraph_hits([]).shape == (0, len(matcher.label_ids))


def test_matching_is_case_insensitive(matcher):
    assert matcher.hits("ROSATOM")["energy"] == matcher.hits("rosatom")["energy"] == 1
    assert matcher.hits("МНОГОПОЛЯРНЫЙ МИР")["multipolar_order"] == 1
    assert matcher.hits("надёжный партнёр")["reliable_partnership"] == matcher.hits("надежный партнер")["reliable_partnership"] == 1


def test_prefilter_changes_no_result(cb, matcher):
    # The literal prefilter must be sound: every match contains one of the cue's literals, and the
    # counts equal those of the plain case-insensitive alternation.
    texts = [s for _, s in POSITIVE + NEGATIVE] + ["\n".join(s for _, s in POSITIVE)]
    for lid in matcher.label_ids:
        plain = re.compile("|".join(f"(?:{c})" for c in cb.label(lid).cues).translate(YO), re.IGNORECASE)
        for text in texts:
            assert matcher.hits(text)[lid] == len(plain.findall(text.translate(YO))), (lid, text)
        for cue in cb.label(lid).cues:
            lits = required_literals(cue)
            for text in texts:
                if lits is not None and re.search(cue, text, re.IGNORECASE):
                    assert any(x in text.lower() for x in lits), (cue, text)


def test_required_literals():
    assert required_literals(r"(?<!#)\bBRICS\b") == {"brics"}
    assert required_literals(r"\b(crude )?oil\b") == {"oil"}
    assert required_literals(r"NATO.{0,80}(expan|enlarg)") == {"nato"}
    assert required_literals(r"[a-z]+") is None
    assert required_literals(r"(") is None


def test_stance_rule(cb):
    assert stance_from_frames(["western_hegemony"], cb) == "against"
    assert stance_from_frames(["peace_and_dialogue", "sanctions_illegitimate"], cb) == "against"
    assert stance_from_frames(["peace_and_dialogue"], cb) == "none"
    assert stance_from_frames([], cb) == "none"


def test_cue_rule_predict(cb):
    posts = [
        ["The BRICS summit backed a multipolar world.", "Illegal unilateral sanctions must be lifted.", "Nothing here."],
        "Russia and ASEAN discussed international information security.\nBoth are reliable partners.",
        ["A quiet day."],
    ]
    out = cue_rule_predict(posts, cb)
    assert list(out.columns) == ["topics", "frames", "stance_west", "scores", "stance_scores", "evidence", "cue_hits"]
    assert out["topics"].tolist() == [["brics"], ["cyber"], []]
    assert out["frames"][0] == ["multipolar_order", "sanctions_illegitimate"]  # codebook order
    assert out["stance_west"].tolist() == ["against", "none", "none"]
    assert out["evidence"][0]["multipolar_order"] == [{"paragraph": 0, "text": posts[0][0]}]
    assert out["evidence"][0]["sanctions_illegitimate"][0]["paragraph"] == 1
    assert out["evidence"][1] == {"reliable_partnership": [{"paragraph": 1, "text": "Both are reliable partners."}]}
    assert out["scores"][0]["brics"] == 1.0 and out["scores"][0]["energy"] == 0.0
    assert out["stance_scores"][0] == {"against": 1.0, "favor": 0.0, "none": 0.0}
    assert out["evidence"][2] == {} and out["cue_hits"][2] == {}


def test_cue_rule_rejects_a_bare_string(cb):
    with pytest.raises(ConfigError, match="wrap it in a list"):
        cue_rule_predict("The BRICS summit.", cb)


def test_cue_rule_model_agrees_with_cue_rule_predict(cb, gold):
    from classify.learners.cuerule import CueRuleModel

    model = CueRuleModel(cb).fit()
    pred = model.predict(gold)
    ref = cue_rule_predict(gold, cb)
    assert pred["topics"].tolist() == ref["topics"].tolist()
    assert pred["frames"].tolist() == ref["frames"].tolist()
    assert pred["stance_west"].tolist() == ref["stance_west"].tolist()


def test_hashtags_read_as_words_only_when_asked(cb, matcher):
    text = "Putin will chair the 12th #BRICS Summit. #Россия #Energy"
    read = CueMatcher(cb, hashtags=True)
    assert matcher.hits(text)["brics"] == 0  # the codebook's cue skips a bare hashtag, as written
    assert read.hits(text)["brics"] == 1 and read.matched(text, "brics") == ["BRICS"]
    assert matcher.hits(text)["brics"] == 0  # the two modes keep separate caches
    assert read.hits("C# and #1 are no cues.") == matcher.hits("C# and #1 are no cues.")  # a dropped '#' adds no hit
    plain = "BRICS and the New Development Bank; надёжный партнёр."
    assert read.hits(plain) == matcher.hits(plain) and read.hits(plain)["brics"] == 2  # no hashtag, no difference
    assert matcher.matched(plain, "reliable_partnership") == ["надёжный партн"]  # shown as the post spells it
