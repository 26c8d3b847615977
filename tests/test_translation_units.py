"""Pure parts of translation/: segmenting, checks, cache, backoff and retries, registry, report math."""
import sqlite3

import pytest

from translation import checks, segment
from medtasks.common import UsageError
from translation.cache import Cache
from translation.net import PermanentError, RateLimiter, RetryableError, backoff_delay, call_with_retries, redact

CONTEXT = ("Programmed cell death (PCD) is the regulated death of cells. The lace plant produces holes. "
           "Mitochondria were stained with 5 mg of dye, e.g. the red one; then imaged.\nA second paragraph "
           "follows here. 病人发烧三天。请问诊断是什么？")


@pytest.mark.parametrize("limit", [1, 7, 30, 60, 100, 10_000])
def test_segments_fit_the_limit_and_rejoin_to_the_text(limit):
    segs = segment.segment(CONTEXT, limit)
    assert all(0 < len(text) <= limit for text, _ in segs)
    assert "".join(t + s for t, s in segs) == CONTEXT.strip()
    assert segment.join([t for t, _ in segs], segs) == CONTEXT.strip()


def test_segments_cut_at_sentence_ends_first():
    segs = segment.segment(CONTEXT, 60)
    assert segs[0] == ("Programmed cell death (PCD) is the regulated death of cells.", " ")
    assert ("e.g. the red one" in "".join(t for t, _ in segs))  # 'e.g. the' is not a sentence end
    assert any(sep == "\n" for _, sep in segs)  # the paragraph break survives the round trip
    assert segs[-1][0].endswith("请问诊断是什么？")


def test_short_text_is_one_segment_and_empty_text_none():
    assert segment.segment("  Aspirin  ", 500) == [("Aspirin", "")]
    assert segment.segment("   ", 500) == []
    with pytest.raises(ValueError):
        segment.segment("x", 0)
    with pytest.raises(ValueError):
        segment.join(["a"], [])
    assert not segment.needs_translation("120/80 (3)") and segment.needs_translation("5 mg")


SRC = {"question": "A 45-year-old man has a blood pressure of 120/80 mm Hg after 5 mg of morphine. What next?",
       "options": ["Aspirin", "Give 2.5 mg of drug X intravenously now", "Observe", "Surgery"], "context": None}


def _tr(**changes):
    item = {"question": "Un homme de 45 ans a une pression artérielle de 120/80 mm Hg après 5 mg de morphine. Et ensuite ?",
            "options": ["Aspirine", "Donner 2,5 mg du médicament X par voie intraveineuse", "Observer", "Chirurgie"],
            "context": None}
    item.update(changes)
    return item


@pytest.mark.parametrize("changes, target, failing", [
    ({}, "fr", []),
    ({"options": ["Aspirine", "Donner 2,5 mg du médicament X par voie intraveineuse", "", "Chirurgie"]}, "fr",
     ["nonempty"]),
    ({"options": ["Aspirine", "Observer", "Chirurgie"]}, "fr", ["options"]),
    ({"question": "Un homme de 45 ans a une pression artérielle de 120/80 après de la morphine. Et ensuite ?"}, "fr",
     ["numbers", "units"]),
    ({"question": "45 ans 120/80 mm Hg 5 mg"}, "fr", ["length_ratio"]),
    ({"question": SRC["question"]}, "fr", ["translated"]),
    ({"question": "MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY. 45 120 80 5 mm Hg mg"},
     "fr", ["no_service_warning"]),
    ({"question": "Мужчина 45 лет, давление 120/80 мм рт. ст. после 5 мг морфина. Что дальше делать врачу?",
      "options": ["Аспирин", "Дать 2,5 мг препарата X внутривенно", "Наблюдать", "Операция"]}, "ru", []),
    ({}, "ru", ["script", "translated"]),  # French text is not Russian
])
def test_item_checks_table(changes, target, failing):
    passed, reasons = checks.check_item(SRC, _tr(**changes), target)
    failed = [name for name in checks.CHECKS if name not in passed]
    if "options" in failing:
        assert failed[0] == "options" and reasons and reasons[0].startswith("options:")
    else:
        assert failed == failing, reasons
    assert bool(reasons) == bool(failing)


def test_numbers_ignore_numeral_system_and_separators():
    assert checks.numbers("2,5 mg and 1 000") == checks.numbers("2.5 mg, 1,000") == checks.numbers("1000, 25")
    assert checks.numbers("٤٥ عاما") == checks.numbers("45")
    assert checks.service_warning("QUERY LENGTH LIMIT EXCEEDED. MAX ALLOWED QUERY : 500 CHARS") is not None
    assert checks.service_warning("Ein ganz normaler Satz.") is None


def _fails(source: dict, translation: dict, target: str) -> dict[str, list[str]]:
    """{check name: reasons} of the checks that fail (check_item runs the same table)."""
    passed, reasons = checks.check_item(source, translation, target)
    failed = {name: found for name, check in checks.CHECKS.items() if (found := check(source, translation, target))}
    assert sorted(failed) == sorted(set(checks.CHECKS) - set(passed)) and sum(failed.values(), []) == reasons
    return failed


def _one(question: str, options=("Clopidogrel",)) -> dict:
    return {"question": question, "options": list(options), "context": None}


RU_Q = "Мужчина 45 лет с болью в груди поступил в отделение неотложной помощи. Какой препарат назначить?"
EN_Q = "A 45-year-old man with chest pain presents to the emergency department. Which drug should be given?"


def test_length_is_compared_in_characters_not_bytes():
    cut = RU_Q[: len(RU_Q) // 5]  # Cyrillic cut to 20% of its characters is 40% of its bytes
    assert len(cut.encode()) / len(EN_Q.encode()) > 0.3  # the old byte ratio let it pass
    failed = _fails(_one(EN_Q), _one(cut + " 45", ["Клопидогрел"]), "ru")
    assert list(failed) == ["length_ratio"] and "under 0.5 (truncated?)" in failed["length_ratio"][0]
    assert _fails(_one(EN_Q), _one(RU_Q, ["Клопидогрел"]), "ru") == {}
    # Chinese is far shorter in characters: a Han character counts three, so a full translation passes
    zh = "一名45岁男性因胸痛到急诊科就诊。应给予哪种药物？"
    assert _fails(_one(EN_Q), _one(zh, ["氯吡格雷"]), "zh") == {}
    assert "length_ratio" in _fails(_one(EN_Q), _one(zh[:6], ["氯吡格雷"]), "zh")


@pytest.mark.parametrize("source, stub, target", [("Clopidogrel", "Кл", "ru"), ("Choledocholithiasis", "Cho", "fr"),
                                                  ("Choledocholithiasis", "胆", "zh")])
def test_short_options_cut_to_a_stub_are_caught(source, stub, target):
    question = {"ru": RU_Q, "fr": "Un homme de 45 ans souffrant de douleurs thoraciques arrive aux urgences. "
                "Quel médicament faut-il donner ?", "zh": "一名45岁男性因胸痛到急诊科就诊。应给予哪种药物？"}[target]
    failed = _fails(_one(EN_Q, [source, "Aspirin"]), _one(question, [stub, "Aspirin"]), target)
    assert list(failed) == ["length_ratio"] and failed["length_ratio"][0].startswith("option 1: length ratio")
    # short renderings that are fine stay fine: "Yes" -> "Да", "Aspirin" -> "AAS", "No" is not measured
    assert _fails(_one(EN_Q, ["Yes", "No", "Aspirin"]), _one(RU_Q, ["Да", "Нет", "AAS"]), "ru") == {}


@pytest.mark.parametrize("target, question", [("ru", RU_Q), ("ar", "رجل يبلغ من العمر 45 عامًا يعاني من ألم في الصدر. ما الدواء؟"),
                                              ("zh", "一名45岁男性因胸痛到急诊科就诊。应给予哪种药物？")])
def test_untranslated_options_are_caught_in_every_own_script(target, question):
    failed = _fails(_one(EN_Q, ["Polyarteritis nodosa", "Clopidogrel", "HbA1c 7.5%"]),
                    _one(question, ["Polyarteritis nodosa", "Clopidogrel", "HbA1c 7.5%"]), target)
    # the drug name and the lab value may stay in Latin letters; a two-word disease may not
    assert failed == {"translated": [f"option 1: left untranslated (no {target} letters)"]}


FR_Q = "Un homme de 45 ans souffrant de douleurs thoraciques arrive aux urgences. Quel médicament faut-il donner ?"


@pytest.mark.parametrize("target", ["fr", "es", "de", "pt"])
def test_untranslated_fields_are_caught_in_english_letters(target):
    options = ["Chest radiography", "Observation at home", "Clopidogrel", "Staphylococcus aureus", "Diabetes mellitus",
               "Janus Kinase", "120/80 mm Hg", "Acute pancreatitis", "Tyrosine kinase", "glucose-6-phosphate"]
    failed = _fails(_one(EN_Q, options), _one(FR_Q, options), target)
    assert failed == {"translated": [f"option {i}: left untranslated (identical to the source)" for i in (1, 2, 8)]}
    # a long field copied word for word is caught by its share of English words, even with a word changed
    copied = EN_Q.replace("emergency", "urgence")
    assert "translated" in _fails(_one(EN_Q), _one(copied), target)


def test_dropped_digits_are_caught_even_when_the_number_recurs():
    source = _one("Fever for 3 days and cough for 3 weeks; 1,200 mg daily. What next?", ["Give 250 mg"])
    kept = _one("Fièvre depuis 3 jours et toux depuis 3 semaines ; 1 200 mg par jour. Et ensuite ?", ["Donner 250 mg"])
    assert _fails(source, kept, "fr") == {}
    assert _fails(_one("Which ratio? " * 4, ["1.0/2"]), _one("Quel rapport ? " * 4, ["1/2"]), "fr") == {}
    # imperial equivalents in parentheses may go (translators into metric languages drop them), nothing else
    usmle = _one("He is 175 cm (5 ft 9 in) tall, weighs 80 kg (176 lb); temperature 37.2°C (99°F). Next step?")
    metric = _one("Il mesure 175 cm, pèse 80 kg ; température 37,2 °C. Étape suivante ?")
    assert _fails(usmle, metric, "fr") == {}
    assert _fails(usmle, _one("Il mesure 175 cm, pèse 80 kg ; température 37 °C. Étape suivante ?"), "fr") == \
        {"numbers": ["question: numbers missing from the translation: 2"]}
    dropped = _one("Fièvre depuis 3 jours et toux depuis semaines ; 1 200 mg par jour. Et ensuite ?", ["Donner 25 mg"])
    assert _fails(source, dropped, "fr") == {"numbers": ["question: numbers missing from the translation: 3",
                                                         "option 1: numbers missing from the translation: 250"]}


def test_units_are_checked_in_every_script():
    source = _one("A 45-year-old man takes 5 mg of warfarin; his temperature is 39 °C. What next?", ["Give 10 mL"])
    ru = _one("Мужчина 45 лет принимает 5 мг варфарина; температура 39 °С. Что дальше?", ["Ввести 10 мл"])
    zh = _one("一名45岁男性服用5毫克华法林；体温39℃。下一步？", ["给予10毫升"])
    assert _fails(source, ru, "ru") == {} and _fails(source, zh, "zh") == {}
    lost = _one("Мужчина 45 лет принимает 5 варфарина; температура 39. Что дальше делать?", ["Ввести 10 мгновенно"])
    assert _fails(source, lost, "ru") == {"units": ["question: units missing from the translation: mg, °c",
                                                    "option 1: units missing from the translation: ml"]}


def test_cache_round_trip_and_key_parts(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("libre", "v1", "en", "fr", [("heart", "cœur"), ("lung", "poumon")])
    cache.put_many("libre", "v1", "en", "fr", [("heart", "OTHER")])  # first answer kept
    assert {k: v for k, (v, _) in cache.get_many("libre", "v1", "en", "fr", ["heart", "lung", "kidney"]).items()} \
        == {"heart": "cœur", "lung": "poumon"}
    for other in [("google", "v1", "en", "fr"), ("libre", "v2", "en", "fr"), ("libre", "v1", "en", "es")]:
        assert cache.get_many(*other, ["heart"]) == {}
    texts = [f"t{i}" for i in range(1200)]  # more than SQLite's bound-parameter chunk
    cache.put_many("libre", "v1", "en", "fr", [(t, t.upper()) for t in texts])
    assert len(cache.get_many("libre", "v1", "en", "fr", texts)) == 1200
    cache.close()
    columns = [row[1] for row in sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA table_info(translations)")]
    assert "api_key" not in columns and "text_sha256" in columns


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    assert [backoff_delay(a, base=0.5, cap=30, rand=lambda: 1.0) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(3, rand=lambda: 0.0) == 0.0


def test_retries_only_retryable_errors_then_gives_up():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError("HTTP 503")
        return "ok"

    assert call_with_retries(flaky, retries=5, sleep=sleeps.append) == "ok" and len(sleeps) == 2
    with pytest.raises(PermanentError, match="gave up after 3 attempts: HTTP 429"):
        call_with_retries(lambda: (_ for _ in ()).throw(RetryableError("HTTP 429")), retries=2, sleep=lambda s: None)
    calls.clear()

    def bad_key():
        calls.append(1)
        raise PermanentError("HTTP 403")

    with pytest.raises(PermanentError):
        call_with_retries(bad_key, retries=5, sleep=lambda s: None)
    assert len(calls) == 1


def test_rate_limiter_spaces_calls():
    import time

    limiter = RateLimiter(50.0)
    start = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - start >= 5 / 50 * 0.9


def test_redact_hides_keys():
    assert redact("Unauthorized access with the api key sk-secret-123", ["sk-secret-123", None]) == \
        "Unauthorized access with the api key ***"


def test_registry_lists_valid_names_and_rejects_foreign_options(monkeypatch):
    from translation.backends import BACKENDS, get_backend

    with pytest.raises(UsageError, match="valid: google, deepl"):
        get_backend("babelfish")
    with pytest.raises(UsageError, match="does not take --model"):
        get_backend("google", model="x")
    monkeypatch.delenv("DEEPL_API_KEY", raising=False)
    with pytest.raises(UsageError, match="DEEPL_API_KEY"):
        get_backend("deepl")
    assert set(BACKENDS) >= {"google", "deepl", "microsoft", "mymemory", "libre", "seq2seq", "openai-chat"}


def test_service_language_codes_come_from_the_languages_table():
    from translation.backends.web import service_code

    assert service_code("google", "zh") == "zh-CN" and service_code("libre", "zh") == "zh"
    assert service_code("mymemory", "pt") == "pt-PT"


def test_report_math():
    from translation.quality import bleu_tokenizer, corpus_scores, outliers

    assert bleu_tokenizer("zh") == "zh" and bleu_tokenizer("fr") == "13a" and bleu_tokenizer("ru") == "13a"
    scores = {f"i{n}": 80.0 + n % 5 for n in range(20)} | {"bad": 12.0}
    assert outliers(scores) == ["bad"]
    zh = corpus_scores(["病人发烧三天"], ["病人发烧三天"], "zh")
    assert zh["bleu"] == pytest.approx(100) and zh["bleu_tokenize"] == "zh"
    assert corpus_scores(["病人发烧三天"], ["病人发烧两天"], "zh")["bleu"] > 0  # 13a would see one token: 0
