"""Pure parts of translation/: segmenting, checks, cache, backoff and retries, registry, report math."""
import sqlite3

import pytest

from translation import checks, segment
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
    ({}, "ru", ["script"]),  # French text is not Russian
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
    assert checks.numbers("2,5 mg and 1 000") == checks.numbers("2.5 mg, 1,000") == {"2", "5", "1", "000"}
    assert checks.numbers("٤٥ عاما") == {"45"}
    assert checks.service_warning("QUERY LENGTH LIMIT EXCEEDED. MAX ALLOWED QUERY : 500 CHARS") is not None
    assert checks.service_warning("Ein ganz normaler Satz.") is None


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

    with pytest.raises(KeyError, match="valid: google, deepl"):
        get_backend("babelfish")
    with pytest.raises(ValueError, match="does not take option.*model"):
        get_backend("google", model="x")
    monkeypatch.delenv("DEEPL_API_KEY", raising=False)
    with pytest.raises(PermanentError, match="DEEPL_API_KEY"):
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
