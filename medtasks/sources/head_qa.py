"""HEAD-QA (Vilares and Gómez-Rodríguez, 2019): the Spanish healthcare specialisation exams (MIR, EIR,
FIR, BIR, QIR, PIR) in Spanish, and the authors' English translation of the same exams.

One JSON object per file: {version, language, exams: {name: {name, category, year, data: [{qid,
qtext, ra, answers: [{aid, atext}], image}]}}}; `train_HEAD.json`, `dev_HEAD.json`, `test_HEAD.json`
(es) and `*_HEAD_EN.json` (en). The split is the first part of the file name (dev -> validation).

- id `head_qa-<exam>-<qid>` (head_qa-Cuaderno_2016_1_B-12): one exam question has one id in both
  languages, so Spanish and English runs compare question by question. `read_aligned` checks that the
  files agree on exams, question ids, right answers, option counts and images before converting.
- options: the answers in aid order (aid 1 -> A); `ra` (the right aid) gives the letter. Dev and
  test questions have 4 options, train 5.
- a question with an image (non-empty `image`) is left out: Exclusion reason "needs an image".
- provenance: exam, year, qid, category; kind "pretranslated" for English (the authors' machine
  translation), "import" for Spanish. The release spells nursing "nursery"; it is stored as
  "nursing" (the other categories as they are: medicine, pharmacology, biology, psychology, chemistry).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Exclusion, Record, split_name
from medtasks.sources.common import (
    check_unique,
    checked,
    field,
    load_json,
    provenance,
    source_name,
    text_field,
)
from medtasks.spec import get_benchmark

NAME = "head_qa"
BENCHMARK = "head_qa"
CATEGORIES = {"medicine": "medicine", "nursery": "nursing", "nursing": "nursing", "pharmacology": "pharmacology",
              "biology": "biology", "psychology": "psychology", "chemistry": "chemistry"}
NEEDS_IMAGE = "needs an image"


@dataclass(frozen=True)
class Question:
    """One exam question as the release has it, validated (options in aid order, `right` an index)."""
    exam: str
    year: str
    category: str
    qid: str
    text: str
    options: tuple[str, ...]
    right: int
    image: str

    @property
    def id(self) -> str:
        return f"{BENCHMARK}-{self.exam}-{self.qid}"

    def shape(self) -> tuple:
        """What both languages of one exam question must share."""
        return self.exam, self.year, self.category, self.qid, self.right + 1, len(self.options), bool(self.image)


@dataclass(frozen=True)
class ExamFile:
    path: Path
    source: str
    sha256: str
    language: str
    split: str
    questions: tuple[Question, ...]


def _id_text(value, source: str, where: str, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(source, where, key, f"expected a non-empty id, got {value!r:.60}")
    return str(value).strip()


def _aid(value, source: str, where: str, key: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(source, where, key, f"expected an answer number, got {value!r:.60}")
    return value


def _question(row, exam: str, year: str, category: str, index: int, source: str) -> Question:
    where = f"exam {exam!r} question {index}"
    qid = _id_text(field(row, "qid", source, where), source, where, "qid")
    where = f"exam {exam!r} qid {qid}"
    image = field(row, "image", source, where)
    if image is not None and not isinstance(image, str):
        raise DataError(source, where, "image", f"expected a file name or '', got {image!r:.60}")
    answers = field(row, "answers", source, where)
    if not isinstance(answers, list) or not answers:
        raise DataError(source, where, "answers", "expected a list of {aid, atext}")
    by_aid = {}
    for i, answer in enumerate(answers):
        aid = _aid(field(answer, "aid", source, where), source, where, f"answers[{i}].aid")
        if aid in by_aid:
            raise DataError(source, where, f"answers[{i}].aid", f"answer number {aid} appears twice")
        by_aid[aid] = text_field(answer, "atext", source, where) if not image else answer.get("atext")
    if sorted(by_aid) != list(range(1, len(by_aid) + 1)):
        raise DataError(source, where, "answers", f"answer numbers {sorted(by_aid)} are not 1..{len(by_aid)}")
    right = _aid(field(row, "ra", source, where), source, where, "ra")
    if right not in by_aid:
        raise DataError(source, where, "ra", f"right answer {right} is not one of the answers 1..{len(by_aid)}")
    text = field(row, "qtext", source, where) if image else text_field(row, "qtext", source, where)
    return Question(exam, year, category, qid, text, tuple(by_aid[a] for a in sorted(by_aid)), right - 1, image or "")


def _split_of(path: Path, source: str) -> str:
    stem = path.name.split("_")[0].lower()
    if stem not in ("train", "dev", "test"):
        raise DataError(source, None, None, "cannot tell the split from the file name (expected train_HEAD*.json, "
                        "dev_HEAD*.json or test_HEAD*.json); pass split=")
    return split_name(stem)


def load(path, split: str | None = None, root=None) -> ExamFile:
    """Parse and validate one HEAD-QA file (every question, images included)."""
    path = Path(path)
    source = source_name(path, root)
    data = load_json(path, source)
    language = field(data, "language", source, "top level")
    allowed = get_benchmark(BENCHMARK).languages
    if language not in allowed:
        raise DataError(source, "top level", "language", f"{language!r} is not a HEAD-QA language ({', '.join(allowed)})")
    exams = field(data, "exams", source, "top level")
    if not isinstance(exams, dict) or not exams:
        raise DataError(source, "top level", "exams", "expected {exam name: exam}")
    questions: list[Question] = []
    for name, exam in exams.items():
        where = f"exam {name!r}"
        if text_field(exam, "name", source, where) != name:
            raise DataError(source, where, "name", f"{exam['name']!r} differs from its key {name!r}")
        raw = field(exam, "category", source, where)
        if raw not in CATEGORIES:
            raise DataError(source, where, "category", f"unknown category {raw!r}; valid: {', '.join(CATEGORIES)}")
        year = _id_text(field(exam, "year", source, where), source, where, "year")
        rows = field(exam, "data", source, where)
        if not isinstance(rows, list):
            raise DataError(source, where, "data", "expected a list of questions")
        seen: set[str] = set()
        for index, row in enumerate(rows, 1):
            question = _question(row, name, year, CATEGORIES[raw], index, source)
            if question.qid in seen:
                raise DataError(source, f"exam {name!r} question {index}", "qid", f"qid {question.qid} appears twice")
            seen.add(question.qid)
            questions.append(question)
    return ExamFile(path, source, sha256_file(path), language, split_name(split) if split else _split_of(path, source),
                    tuple(questions))


def convert(exam_file: ExamFile, excluded: list | None = None) -> list[Record]:
    """Records of the questions without an image; those with one are appended to `excluded`."""
    excluded = [] if excluded is None else excluded
    bench = get_benchmark(BENCHMARK)
    letters = bench.letters
    kind = "import" if exam_file.language in bench.native_languages else "pretranslated"  # en: the authors' MT
    records = []
    for q in exam_file.questions:
        row = f"{q.exam}/{q.qid}"
        if q.image:
            excluded.append(Exclusion(q.id, NEEDS_IMAGE, BENCHMARK, exam_file.language, exam_file.split,
                                      exam_file.source, row, q.image))
            continue
        options = dict(zip(letters, q.options))
        prov = provenance(NAME, exam_file.source, exam_file.sha256, row, kind, exam=q.exam, year=q.year, qid=q.qid,
                          category=q.category)
        records.append(checked(Record(q.id, BENCHMARK, exam_file.language, exam_file.split, q.text, options,
                                      letters[q.right], None, prov), f"exam {q.exam!r} qid {q.qid}"))
    check_unique(records)
    return records


def read(path, split: str | None = None, root=None, excluded: list | None = None) -> list[Record]:
    """One HEAD-QA file -> Records (language from the file, split from its name unless given)."""
    return convert(load(path, split, root), excluded)


def check_aligned(reference: ExamFile, other: ExamFile) -> None:
    """Fail at the first exam question where two languages of one split disagree."""
    if reference.language == other.language or reference.split != other.split:
        raise DataError(other.source, None, None, f"expected the same split as {reference.source} in another "
                        f"language, got {other.language}/{other.split} for {reference.language}/{reference.split}")
    ours = {q.id: q.shape() for q in reference.questions}
    theirs = {q.id: q.shape() for q in other.questions}
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, absent from {reference.source}"
        raise DataError(other.source, None, "qid", f"does not match {reference.source}: {what} "
                        f"({len(missing)} missing, {len(extra)} extra)")
    names = ("exam", "year", "category", "qid", "right answer", "option count", "image")
    for q in other.questions:
        for name, a, b in zip(names, ours[q.id], q.shape()):
            if a != b:
                raise DataError(other.source, f"exam {q.exam!r} qid {q.qid}", name,
                                f"{b!r} here but {a!r} in {reference.source}: the files are not the same exams")


def read_aligned(paths, root=None, excluded: list | None = None) -> list[Record]:
    """Several languages of one split: every file checked against the first, then converted."""
    files = [load(path, root=root) for path in paths]
    for other in files[1:]:
        check_aligned(files[0], other)
    return [record for exam_file in files for record in convert(exam_file, excluded)]
