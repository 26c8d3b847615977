"""The one table of per-language facts. No language literal lives anywhere else."""
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


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", r"[A-Za-z]", "en", "en-GB"),
        Language("es", "Spanish", r"[A-Za-zÁÉÍÓÚÑÜáéíóúñü]", "es", "es-ES"),
        Language("de", "German", r"[A-Za-zÄÖÜäöüß]", "de", "de-DE"),
        Language("pt", "Portuguese", r"[A-Za-zÀ-ÿ]", "pt", "pt-PT"),
        Language("ru", "Russian", r"[\u0400-\u04FF]", "ru", "ru-RU"),
        Language("fr", "French", r"[A-Za-zÀ-ÿŒœ]", "fr", "fr-FR"),
        Language("ar", "Arabic", r"[\u0600-\u06FF]", "ar", "ar-SA"),
        Language("zh", "Chinese", r"[\u4E00-\u9FFF]", "zh-CN", "zh-CN"),
    )
}
SOURCE_LANGUAGE = "en"


def get_language(code: str) -> Language:
    try:
        return LANGUAGES[code]
    except KeyError:
        raise KeyError(f"unknown language {code!r}; valid: {', '.join(LANGUAGES)}") from None


def script_share(text: str, code: str) -> float:
    """Fraction of the letters of `text` written in `code`'s script (0..1; 1.0 for no letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    pattern = re.compile(get_language(code).script)
    return sum(1 for ch in letters if pattern.match(ch)) / len(letters)
