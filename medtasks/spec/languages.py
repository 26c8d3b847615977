"""The per-language facts of the spec. No language literal lives anywhere else.

The built-in table holds the suite's eight languages; users add more with spec files
(medtasks/spec/user.py); `LANGUAGES` (medtasks.spec) is the union of both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, used in task names: medqa_<code>
    name: str  # English name, as BioInstructQA spells its files (`French-full.json`)
    script: str  # regex of the characters a text in this language is mostly written in
    google_code: str  # deep-translator / Google code (Chinese differs: zh-CN)
    mymemory_code: str  # MyMemory wants locales
    microsoft_code: str  # Microsoft Translator (Chinese: zh-Hans)
    nllb_code: str  # NLLB-200 / FLORES-200 code
    bleu_tokenize: str  # sacrebleu tokenizer for BLEU in this language (13a is near 0 for Chinese)
    spaced: bool = True  # words separated by spaces (False for zh, ja, th: n-grams count characters)
    # Legacy encodings a user's file in this language is likely to be in (named when an import finds a
    # file that is not UTF-8; never used to decode). Chinese: gb18030 (a superset of GBK / GB2312); Big5
    # is not tried: GB and Big5 byte pairs often decode as each other.
    legacy_encodings: tuple[str, ...] = ()
    builtin: bool = True  # False for languages added by a user spec file


CP1252 = ("cp1252",)  # Western European Windows code page

BUILTIN_LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", r"[A-Za-z]", "en", "en-GB", "en", "eng_Latn", "13a", legacy_encodings=CP1252),
        Language("es", "Spanish", r"[A-Za-zÁÉÍÓÚÑÜáéíóúñü]", "es", "es-ES", "es", "spa_Latn", "13a",
                 legacy_encodings=CP1252),
        Language("de", "German", r"[A-Za-zÄÖÜäöüß]", "de", "de-DE", "de", "deu_Latn", "13a", legacy_encodings=CP1252),
        Language("pt", "Portuguese", r"[A-Za-zÀ-ÿ]", "pt", "pt-PT", "pt", "por_Latn", "13a", legacy_encodings=CP1252),
        Language("ru", "Russian", r"[\u0400-\u04FF]", "ru", "ru-RU", "ru", "rus_Cyrl", "13a",
                 legacy_encodings=("cp1251", "koi8_r")),
        Language("fr", "French", r"[A-Za-zÀ-ÿŒœ]", "fr", "fr-FR", "fr", "fra_Latn", "13a", legacy_encodings=CP1252),
        Language("ar", "Arabic", r"[\u0600-\u06FF]", "ar", "ar-SA", "ar", "arb_Arab", "13a",
                 legacy_encodings=("cp1256",)),
        Language("zh", "Chinese", r"[\u4E00-\u9FFF]", "zh-CN", "zh-CN", "zh-Hans", "zho_Hans", "zh", spaced=False,
                 legacy_encodings=("gb18030",)),
    )
}
SOURCE_LANGUAGE = "en"  # the language of the original releases and of BioMistral's few-shot examples


def script_share(text: str, code: str) -> float:
    """Fraction of the letters of `text` written in `code`'s script (0..1; 1.0 for no letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    from medtasks.spec.registry import get_language

    pattern = re.compile(get_language(code).script)
    return sum(1 for ch in letters if pattern.match(ch)) / len(letters)
