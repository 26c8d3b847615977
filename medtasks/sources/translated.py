"""A user's own translation of an English release file, in the release's own format and layout
(`medqa/<language>/4_options/test.jsonl`, `medmcqa/<language>/dev.jsonl`, `pubmedqa/<language>/...`,
`mmlu/<language>/test/<subject>_test.csv`).

The family's reader checks it like the English file; then each question is paired with its English
twin, takes the twin's id, and must keep its answer (and split), so that `medqa_hi` holds the same
questions as `medqa_en`: MedQA and MMLU pair by row (the ids are row numbers), MedMCQA by its `id`
field, PubMedQA by PubMed id. Provenance: kind "pretranslated", the translated file and its sha256,
the English file it is aligned to.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from medtasks.records import DataError, Record
from medtasks.sources import medmcqa, medqa, mmlu, pubmedqa
from medtasks.sources.common import checked

TRANSLATION = "the user's own translation (system not recorded)"
BY_ROW, BY_ID = "row", "id"
PAIRING = {"medqa": BY_ROW, "mmlu": BY_ROW, "medmcqa": BY_ID, "pubmedqa": BY_ID}


def read(family: str, path: Path, benchmark: str, language: str, english: list[Record], root=None) -> list[Record]:
    """The records of one translated file, aligned with `english` (the records of the file it translates)."""
    if family == "mmlu":  # mmlu.read pairs rows itself (also for the third-party files)
        records = mmlu.read(path, benchmark=benchmark, language=language, english=english, root=root)
        return [_as_users(r) for r in records]
    if family == "medqa":
        as_read = medqa.read(path, benchmark=benchmark, root=root)
    elif family == "medmcqa":
        as_read = medmcqa.read(path, root=root)
    elif family == "pubmedqa":
        as_read = pubmedqa.read(path, root=root)
    else:
        raise KeyError(f"no translation slot for family {family!r}; valid: {', '.join(PAIRING)}")
    return align(as_read, english, language, PAIRING[family])


def align(translated: list[Record], english: list[Record], language: str, pairing: str) -> list[Record]:
    """`translated` (read as if English) relabelled to `language` with its English twins' ids; a question
    without a twin, another answer or split, or an English test question left untranslated is an error."""
    twins = _twins(translated, english, pairing)
    aligned = []
    for record, twin in zip(translated, twins):
        prov = record.provenance
        where = _where(record)
        for name in ("answer", "split"):
            if getattr(record, name) != getattr(twin, name):
                raise DataError(prov.get("source", "?"), where, name, f"{getattr(record, name)!r} but the English "
                                f"question {twin.id} has {getattr(twin, name)!r}: not a translation of it")
        provenance = {**prov, "kind": "pretranslated", "translation": TRANSLATION,
                      "aligned_to": twin.provenance.get("source")}
        relabelled = dataclasses.replace(record, id=twin.id, language=language, provenance=provenance)
        aligned.append(checked(relabelled, where))
    missing = {r.id for r in english if r.split == "test"} - {r.id for r in aligned}
    if missing:
        source = translated[0].provenance.get("source", "?")
        raise DataError(source, None, None, f"{len(missing)} English test questions are not in it (first: "
                        f"{min(missing)}): a translation holds every question of the English file")
    return aligned


def _twins(translated: list[Record], english: list[Record], pairing: str) -> list[Record]:
    source = translated[0].provenance.get("source", "?") if translated else "?"
    if pairing == BY_ROW:
        if len(translated) != len(english):
            raise DataError(source, translated[-1].provenance.get("row") if translated else None, "rows",
                            f"{len(translated)} rows but the English file has {len(english)}: rows must align 1:1")
        return list(english)
    by_id = {r.id: r for r in english}
    for record in translated:
        if record.id not in by_id:
            raise DataError(source, _where(record), "id",
                            f"{record.id!r} is not a question of the English file")
    return [by_id[r.id] for r in translated]


def _where(record: Record) -> int | str:
    """The record's place in its file as errors name it: the line, or the key (PubMed ids)."""
    row = record.provenance.get("row")
    return row if isinstance(row, int) else f"key {row!r}"


def _as_users(record: Record) -> Record:
    """An MMLU record read from the English layout: the user's translation, not the third-party one."""
    return dataclasses.replace(record, provenance={**record.provenance, "translation": TRANSLATION})
