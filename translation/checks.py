"""Per-item checks of a translation against its English source. Pure functions, one table.

An item is {"question": str, "options": [str, ...], "context": str | None}; letters and the answer
key never leave the English record, so they cannot change. Each check returns the reasons it
fails (empty list: passed). Items with any reason go to the rejected file, never into the store.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable

from medtasks.languages import script_share

Item = dict

# Warnings some services return AS IF they were the translation (MyMemory's quota message, ...).
_SERVICE_WARNINGS = re.compile(
    r"MYMEMORY WARNING|YOU USED ALL AVAILABLE FREE TRANSLATIONS|QUERY LENGTH LIMIT EXCEEDED|"
    r"PLEASE SELECT TWO DISTINCT LANGUAGES|INVALID (?:SOURCE|TARGET) LANGUAGE|NO QUERY SPECIFIED|"
    r"'AUTO' IS AN INVALID SOURCE LANGUAGE"
)
# Clinical units written the same way in every Latin-script language.
_UNITS = re.compile(r"(?<![A-Za-z])(mg|kg|mcg|µg|μg|mL|dL|mmol|mEq|mm ?Hg|IU|°C|°F|%)(?![A-Za-z])")
_DIGITS = re.compile(r"\d+")
_WORDS = re.compile(r"[^\W\d_]{4,}")

# Length is measured in UTF-8 bytes: one pair of bounds then fits Latin, Cyrillic, Arabic and Han
# targets (Chinese is ~1/3 of English in characters but about as long in bytes). The lower bound
# is the "under 30% of the English length" rule that catches truncated vignettes.
LENGTH_RATIO_BOUNDS = (0.3, 4.0)
MIN_CHARS_FOR_RATIO = 40  # short options ("Aspirin") legitimately change length a lot
MIN_LETTERS_UNTRANSLATED = 20
UNTRANSLATED_SHARE = 0.8
MIN_SCRIPT_SHARE = 0.5


def service_warning(text: str) -> str | None:
    match = _SERVICE_WARNINGS.search(text or "")
    return match.group(0) if match else None


def texts(item: Item) -> list[tuple[str, str]]:
    """(field name, text) for every translated field, in a fixed order."""
    out = [("question", item.get("question") or "")]
    out += [(f"option {i + 1}", text or "") for i, text in enumerate(item.get("options") or [])]
    if item.get("context") is not None:
        out.append(("context", item.get("context") or ""))
    return out


def numbers(text: str) -> set[str]:
    """Digit runs, whatever the numeral system (Arabic-Indic digits count) and separators ('2,5' = '2.5')."""
    ascii_digits = "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)
    return set(_DIGITS.findall(ascii_digits))


def byte_ratio(source: str, translation: str) -> float:
    return len(translation.strip().encode()) / max(1, len(source.strip().encode()))


def _nonempty(src: Item, out: Item, target: str) -> list[str]:
    return [f"{name}: empty translation" for (name, s), (_, o) in zip(texts(src), texts(out)) if s.strip() and not o.strip()]


def _options(src: Item, out: Item, target: str) -> list[str]:
    n_src, n_out = len(src.get("options") or []), len(out.get("options") or [])
    if n_src != n_out:
        return [f"options: {n_out} options for {n_src} in the source"]
    if (src.get("context") is None) != (out.get("context") is None):
        return ["context: present in only one of source and translation"]
    return []


def _numbers(src: Item, out: Item, target: str) -> list[str]:
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        missing = sorted(numbers(s) - numbers(o), key=lambda n: (len(n), n))
        if missing:
            reasons.append(f"{name}: numbers missing from the translation: {', '.join(missing)}")
    return reasons


def _units(src: Item, out: Item, target: str) -> list[str]:
    if script_share("mg", target) < 1.0:  # the target script is not Latin: units may be transliterated
        return []
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        norm = lambda t: {u.replace(" ", "") for u in _UNITS.findall(t)}  # noqa: E731
        missing = sorted(norm(s) - norm(o))
        if missing:
            reasons.append(f"{name}: units missing from the translation: {', '.join(missing)}")
    return reasons


def _script(src: Item, out: Item, target: str) -> list[str]:
    joined = " ".join(text for _, text in texts(out))
    share = script_share(joined, target)
    return [] if share >= MIN_SCRIPT_SHARE else [f"script: only {share:.0%} of the letters are in the {target} script"]


def _length(src: Item, out: Item, target: str) -> list[str]:
    lo, hi = LENGTH_RATIO_BOUNDS
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        if len(s.strip()) >= MIN_CHARS_FOR_RATIO and o.strip():
            ratio = byte_ratio(s, o)
            if not lo <= ratio <= hi:
                hint = " (truncated?)" if ratio < lo else ""
                reasons.append(f"{name}: length ratio {ratio:.2f} outside [{lo}, {hi}]{hint}")
    return reasons


def copied_share(source: str, translation: str) -> float:
    """Share of the translation's words (4+ letters) found verbatim in the source: ~1 when the text
    came back untranslated, low for a real translation (only names and shared terms match)."""
    words = _WORDS.findall(translation.lower())
    if not words:
        return 0.0
    source_words = set(_WORDS.findall(source.lower()))
    return sum(w in source_words for w in words) / len(words)


def _translated(src: Item, out: Item, target: str) -> list[str]:
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        if sum(ch.isalpha() for ch in s) < MIN_LETTERS_UNTRANSLATED:
            continue  # drug names and short labels may stay as they are
        share = copied_share(s, o)
        if share >= UNTRANSLATED_SHARE:
            reasons.append(f"{name}: left untranslated ({share:.0%} of its words are the source's)")
    return reasons


def _no_warning(src: Item, out: Item, target: str) -> list[str]:
    return [f"{name}: service warning instead of a translation: {w!r}"
            for name, text in texts(out) if (w := service_warning(text))]


CHECKS: dict[str, Callable[[Item, Item, str], list[str]]] = {
    "nonempty": _nonempty,
    "options": _options,
    "numbers": _numbers,
    "units": _units,
    "script": _script,
    "length_ratio": _length,
    "translated": _translated,
    "no_service_warning": _no_warning,
}


def check_item(source: Item, translation: Item, target: str) -> tuple[list[str], list[str]]:
    """(names of the checks passed, reasons for failure). The options check runs first: the others
    compare fields pairwise and are meaningless when the option counts differ."""
    passed, reasons = [], []
    for name, check in CHECKS.items():
        found = check(source, translation, target)
        if found:
            reasons.extend(found)
            if name == "options":
                break
        else:
            passed.append(name)
    return passed, reasons
