"""Per-item checks of a translation against its English source. Pure functions, one table.

An item is {"question": str, "options": [str, ...], "context": str | None}; letters and the answer
key never leave the English record, so they cannot change. Each check returns the reasons it
fails (empty list: passed). Items with any reason go to the rejected file, never into the store.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Callable

from medtasks.spec import get_language, script_share

Item = dict

# Warnings some services return AS IF they were the translation (MyMemory's quota message, ...).
_SERVICE_WARNINGS = re.compile(
    r"MYMEMORY WARNING|YOU USED ALL AVAILABLE FREE TRANSLATIONS|QUERY LENGTH LIMIT EXCEEDED|"
    r"PLEASE SELECT TWO DISTINCT LANGUAGES|INVALID (?:SOURCE|TARGET) LANGUAGE|NO QUERY SPECIFIED|"
    r"'AUTO' IS AN INVALID SOURCE LANGUAGE"
)
_DIGITS = re.compile(r"\d+")
# USMLE-style imperial equivalents in parentheses, which translators into metric languages drop:
# "37.2°C (99°F)", "80 kg (176 lb)", "175 cm (5 ft 9 in)". Their numbers and units are not required.
_IMPERIAL_ASIDE = re.compile(r"\s*\(\s*\d[\d.,]*\s*(?:°\s?F|lbs?|ft|in|oz|mi)\b[^()]*\)")
_ZERO_DECIMALS = re.compile(r"(?<=\d)[.,](?:0{1,2}|0{4,})(?!\d)")
_WORDS = re.compile(r"[^\W\d_]{4,}")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")

# Clinical units as English writes them, and every spelling that keeps them in a translation:
# Latin targets keep the symbol (IU is UI or IE in some); Cyrillic, Arabic and Chinese have their own.
_UNIT_IN_SOURCE = re.compile(r"(?<![A-Za-z])(mg|kg|mcg|µg|μg|mL|dL|mmol|mEq|mm ?Hg|IU|°C|°F|%)(?![A-Za-z])")
_UNIT_SPELLINGS = {
    "mg": r"mg|мг|ملغ|مغ|ملجم|مجم|مليغرام|ملليغرام|毫克",
    "kg": r"kg|кг|كغ|كجم|كلغ|كيلوغرام|公斤|千克",
    "mcg": r"mcg|µg|μg|мкг|ميكروغرام|مكغ|微克",
    "ml": r"ml|мл|مل|ملليلتر|مليلتر|毫升",
    "dl": r"dl|дл|دل|ديسيلتر|分升",
    "mmol": r"mmol|ммоль|مليمول|ملي مول|毫摩尔",
    "meq": r"meq|мэкв|ميلي مكافئ|مللي مكافئ|毫当量",
    "mmhg": r"mm ?hg|мм рт|ملم زئبق|مم زئبق|ملم ز|毫米汞柱",
    "iu": r"iu|ui|ie|ме|وحدة دولية|وحدات دولية|国际单位",
    "°c": r"°\s?[cс]|℃|درجة مئوية|درجات مئوية|摄氏度",
    "°f": r"°\s?f|℉|فهرنهايت|华氏",
    "%": r"%|٪|％|процент\w*|بالمئة|في المئة|百分之",
}
# A unit counts as kept when a spelling stands apart from Latin and Cyrillic letters ("мг", not the
# "мг" of "мгновенно"); Arabic and Chinese attach words to it, so their letters may touch it.
_UNIT_FOUND = {unit: re.compile(rf"(?<![A-Za-z\u0400-\u04FF])(?:{spellings})(?![A-Za-z\u0400-\u04FF])", re.IGNORECASE)
               for unit, spellings in _UNIT_SPELLINGS.items()}

# Length is compared in characters, whitespace left out (Chinese writes none). Latin, Cyrillic and
# Arabic translations of English run at about the same number of characters (the third-party French
# and Spanish MMLU: median 1.07-1.16, 1st percentile 0.7-0.8 for healthy items), so one character
# counts one. A Han character carries about what three English letters do (an estimate: no parallel
# English-Chinese data is at hand to measure it), so it counts three: every target then lands near 1.
HAN = re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]")
HAN_WEIGHT = 3.0
# Fields of MIN_CHARS_FOR_RATIO characters or more get both bounds. Shorter fields (options such as
# "Clopidogrel") only the lower SHORT_MIN_RATIO: they may grow a lot ("MI" -> "Infarctus du myocarde")
# or shrink a little ("Aspirin" -> "AAS"), never to a stub. Under MIN_CHARS_SHORT ("No") nothing is
# measured. On the third-party French and Spanish MMLU no healthy option falls under 0.5.
LENGTH_RATIO_BOUNDS = (0.5, 3.0)
SHORT_MIN_RATIO = 0.35
MIN_CHARS_FOR_RATIO = 40
MIN_CHARS_SHORT = 4
# Untranslated: see _translated.
COPIED_SHARE = 0.8
MIN_WORDS_COPIED_SHARE = 5
MIN_SCRIPT_SHARE = 0.5
# Endings of words written the same way in every Latin-script language: Latin names ("Diabetes
# mellitus", "Staphylococcus aureus", "Foramen ovale") and chemical names ("Tyrosine kinase").
# "Acute ...", "... biopsy" or "... radiography" do not match.
_SAME_IN_LATIN_SCRIPTS = re.compile(r"(?:a|ae|um|us|i|is|es|en|er|ens|ans|ex|ix|ale|ile|ase|ine|ose|ide|ate|ol)$")
_WORD_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_PUNCTUATION = "\"'“”‘’«»()[]{}.,;:!?¿¡"

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


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


def numbers(text: str) -> Counter:
    """The digits of a text, counted, whatever the numeral system (Arabic-Indic digits count) and
    however numbers are grouped or written ('2,5' = '2.5', '1 000' = '1,000' = '1000', '1.0' = '1')."""
    return Counter(ch for ch in _plain_numbers(text) if ch.isdigit())


def _plain_numbers(text: str) -> str:
    """ASCII digits, and zero decimals dropped ('1.0' -> '1'; a group of three zeros is thousands)."""
    return _ZERO_DECIMALS.sub("", _ascii_digits(text))


def _missing_numbers(source: str, translation: str) -> list[str]:
    """The source's numbers whose digits the translation lost (in the source's spelling)."""
    lost = numbers(source) - numbers(translation)
    if not lost:
        return []
    found = Counter(_DIGITS.findall(_plain_numbers(translation)))
    missing = []
    for run in _DIGITS.findall(_plain_numbers(source)):
        if found[run]:
            found[run] -= 1
        else:
            missing.append(run)
    return missing or sorted(lost.elements())


def shares_source_script(target: str) -> bool:
    """The target is written in English's letters (fr, es, de, pt): copied English looks like it."""
    return script_share("abcdefghijklmnopqrstuvwxyz", target) == 1.0


def text_length(text: str) -> float:
    """Characters without whitespace, a Han character counting HAN_WEIGHT."""
    return sum(HAN_WEIGHT if HAN.match(ch) else 1.0 for ch in text if not ch.isspace())


def length_ratio(source: str, translation: str) -> float:
    return text_length(translation) / max(1.0, text_length(source))


def content_words(text: str) -> list[str]:
    """Words a translation would change: tokens of 4+ letters only, in lower case or capitalised.
    Acronyms and mixed case (ATP, CoA, mRNA) and tokens with digits (glucose-6-phosphate, HbA1c)
    are names and codes that stay as they are."""
    words = []
    for token in text.split():
        word = token.strip(_PUNCTUATION)
        if len(word) >= 4 and _WORD_TOKEN.fullmatch(word) and (word.islower() or word[1:].islower()):
            words.append(word)
    return words


def name_like(text: str) -> bool:
    """Proper names ("Janus Kinase", every word capitalised) and words that every Latin-script
    language writes the same way ("Situs inversus", "Tyrosine kinase"), which a same-script
    translation rightly leaves as they are."""
    words = content_words(text)
    return all(w[0].isupper() for w in words) or all(_SAME_IN_LATIN_SCRIPTS.search(w.lower()) for w in words)


def _same_text(a: str, b: str) -> bool:
    key = lambda t: " ".join(_LETTER_RUNS.findall(t.casefold()))  # noqa: E731
    return key(a) == key(b) and numbers(a) == numbers(b)


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
        if missing := _missing_numbers(_IMPERIAL_ASIDE.sub("", s), o):
            reasons.append(f"{name}: numbers missing from the translation: {', '.join(missing)}")
    return reasons


def units(text: str) -> set[str]:
    """Clinical units in an English text, in the keys of _UNIT_SPELLINGS."""
    canonical = {"µg": "mcg", "μg": "mcg"}
    return {canonical.get(u, u.replace(" ", "").lower()) for u in _UNIT_IN_SOURCE.findall(text)}


def _units(src: Item, out: Item, target: str) -> list[str]:
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        missing = sorted(u for u in units(_IMPERIAL_ASIDE.sub("", s)) if not _UNIT_FOUND[u].search(o))
        if missing:
            reasons.append(f"{name}: units missing from the translation: {', '.join(missing)}")
    return reasons


def _script(src: Item, out: Item, target: str) -> list[str]:
    """Most of the letters (a Han character weighing HAN_WEIGHT) are in the target's script."""
    pattern = re.compile(get_language(target).script)
    weights = [(HAN_WEIGHT if HAN.match(ch) else 1.0, bool(pattern.match(ch)))
               for _, text in texts(out) for ch in text if ch.isalpha()]
    total = sum(w for w, _ in weights)
    share = sum(w for w, ok in weights if ok) / total if total else 1.0
    return [] if share >= MIN_SCRIPT_SHARE else [f"script: only {share:.0%} of the letters are in the {target} script"]


def _length(src: Item, out: Item, target: str) -> list[str]:
    lo, hi = LENGTH_RATIO_BOUNDS
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        size = text_length(s)
        if size < MIN_CHARS_SHORT or not o.strip():
            continue  # too short to measure; empty is the nonempty check's
        ratio = length_ratio(s, o)
        low, high = (lo, hi) if size >= MIN_CHARS_FOR_RATIO else (SHORT_MIN_RATIO, float("inf"))
        if ratio < low:
            reasons.append(f"{name}: length ratio {ratio:.2f} under {low} (truncated?)")
        elif ratio > high:
            reasons.append(f"{name}: length ratio {ratio:.2f} over {high}")
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
    """A field is untranslated when (fields of one content word, numbers or units are exempt: drug
    names, eponyms and '120/80 mm Hg' may stay as they are):
    - the target has its own script (ru, ar, zh) and the field came back without a letter of it;
    - the field has 5+ words and 80% of the translation's words are the source's;
    - the target shares English's letters (fr, es, de, pt) and the field came back identical,
      unless it is a proper or Latin name ("Janus Kinase", "Diabetes mellitus")."""
    own_script = not shares_source_script(target)
    target_letters = re.compile(get_language(target).script)
    reasons = []
    for (name, s), (_, o) in zip(texts(src), texts(out)):
        words = content_words(s)
        if len(words) < 2 or not o.strip():
            continue
        if own_script and not target_letters.search(o):
            reasons.append(f"{name}: left untranslated (no {target} letters)")
        elif len(words) >= MIN_WORDS_COPIED_SHARE and (share := copied_share(s, o)) >= COPIED_SHARE:
            reasons.append(f"{name}: left untranslated ({share:.0%} of its words are the source's)")
        elif not own_script and _same_text(s, o) and not name_like(s):
            reasons.append(f"{name}: left untranslated (identical to the source)")
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
