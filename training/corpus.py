"""PubMed Central Open Access bulk packages -> licence-filtered, chunked, sharded JSONL.

Input: the official bulk packages (`oa_comm_xml.PMC000xxxxxx.baseline.<date>.tar.gz`, JATS XML
articles) and their file lists (`....filelist.csv`: Article File, AccessionID, License,
Retracted, ...). A package is read as a stream, one article at a time, so memory does not grow
with its size. Output, in one folder:

    part-00000.jsonl          chunks {id, pmcid, license, package, chunk, words, text}
    part-00000.dropped.jsonl  what was left out {pmcid, package, member, reason, detail}, reason in DROP_REASONS
    progress.json             what is done (the resume point), rewritten after every part
    manifest.json             totals: articles read / kept / dropped per reason, licences, words, tokens

Resuming re-reads the package stream but skips the articles of finished parts without parsing them.
"""
from __future__ import annotations

import csv
import json
import logging
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from medtasks.common import UsageError, sha256_file
from medtasks.records import DataError
from medtasks.store import atomic_write_bytes
from training.jats import JatsError, chunk_paragraphs, parse_article
from training.ngrams import Settings

log = logging.getLogger(__name__)

FORMAT = "medeval-pmc-corpus/1"
DEFAULT_LICENSES = ("CC0", "CC BY", "CC BY-SA", "CC BY-ND")  # BioMistral's selection
FILE_COLUMNS = ("Article File", "File")  # bulk file lists / the older oa_file_list.csv
ACCESSION_COLUMNS = ("AccessionID", "Accession ID")
# Every reason something is left out of the corpus; `_Writer.drop` refuses any other.
DROP_REASONS = {
    "not_in_file_list": "the package holds an article its file list does not name",
    "license": "the article's licence is not one of --license",
    "retracted": "the file list marks the article as retracted (keep it with --keep-retracted)",
    "malformed_xml": "the XML does not parse or has no <article> (the parser's message is the detail)",
    "no_text": "the article has no title, abstract or body text",
    "contaminated": "the chunk shares an n-gram with a test question of --decontaminate-against: dropped",
    "contaminated_masked": "the chunk shared an n-gram with a test question of --decontaminate-against: that "
                           "text was cut out, the rest kept (--decontaminate-mode mask)",
}


def normalize_license(value: str) -> str:
    """'cc-by 4.0' -> 'CC BY'; PMC's spellings ('CC BY-NC-ND', 'CC0', 'NO-CC CODE') unchanged."""
    text = " ".join(value.upper().replace("_", " ").split())
    if text.startswith("CC-"):
        text = "CC " + text[3:]
    parts = text.split(" ")
    if len(parts) > 1 and parts[-1].replace(".", "").isdigit():  # drop a version suffix
        text = " ".join(parts[:-1])
    return text


@dataclass(frozen=True)
class Entry:
    pmcid: str
    license: str
    retracted: bool


def article_id(path: str) -> str:
    """'PMC000xxxxxx/PMC176545.xml' -> 'PMC176545' (the key shared by packages and file lists)."""
    return PurePosixPath(path).name.split(".")[0]


def read_file_list(path: Path) -> dict[str, Entry]:
    """Read one PMC file list CSV into {pmcid: Entry}. A missing column is a DataError."""
    entries: dict[str, Entry] = {}
    if not Path(path).is_file():
        raise UsageError(f"file list {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        file_col = next((c for c in FILE_COLUMNS if c in columns), None)
        acc_col = next((c for c in ACCESSION_COLUMNS if c in columns), None)
        if file_col is None and acc_col is None:
            raise DataError(str(path), 1, FILE_COLUMNS[0], f"no article column; header is {columns}")
        if "License" not in columns:
            raise DataError(str(path), 1, "License", f"no licence column; header is {columns}")
        for line, row in enumerate(reader, 2):
            key = (row.get(acc_col) or "").strip() if acc_col else ""
            key = key or article_id(row.get(file_col) or "")
            if not key:
                raise DataError(str(path), line, acc_col or file_col, "empty article id")
            retracted = (row.get("Retracted") or "").strip().lower() in ("yes", "true", "1")
            entries[key] = Entry(key, normalize_license(row["License"] or ""), retracted)
    return entries


def default_file_list(package: Path) -> Path:
    """The file list PMC publishes beside a package: X.tar.gz -> X.filelist.csv."""
    name = package.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return package.with_name(name + ".filelist.csv")


def iter_package(package: Path) -> Iterator[tuple[str, tarfile.TarFile, tarfile.TarInfo]]:
    """Stream the article members of a .tar.gz in archive order (never the whole archive in memory)."""
    with tarfile.open(package, mode="r|*") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith((".xml", ".nxml")):
                yield member.name, archive, member


@dataclass
class Options:
    licenses: tuple[str, ...] = DEFAULT_LICENSES
    max_words: int = 1000
    part_chunks: int = 20000  # chunks per output part (a part is also the resume granularity)
    keep_retracted: bool = False
    tokenizer: str | None = None  # count tokens with this tokenizer (a model dir or hub id)
    decontaminate_against: tuple[str, ...] = ()  # tasks whose test questions must not be in the corpus
    decontaminate_mode: str = "drop"  # drop the chunk, or mask (cut out) the overlapping text
    ngrams: Settings = field(default_factory=Settings)
    store: str | None = None  # the store holding those test questions (default: the user's store)

    def key(self) -> dict:
        key = {**asdict(self), "licenses": sorted(normalize_license(x) for x in self.licenses),
               "decontaminate_against": list(self.decontaminate_against)}  # as JSON reads it back
        if not self.decontaminate_against:  # the key of corpora made before decontamination existed
            for name in ("decontaminate_against", "decontaminate_mode", "ngrams", "store"):
                del key[name]
        return key


@dataclass
class Stats:
    articles_read: int = 0
    articles_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    licenses: Counter = field(default_factory=Counter)
    chunks: int = 0
    words: int = 0
    tokens: int | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "dropped": dict(sorted(self.dropped.items())),
                "licenses": dict(sorted(self.licenses.items()))}

    @classmethod
    def from_dict(cls, data: dict) -> "Stats":
        return cls(**{**data, "dropped": Counter(data["dropped"]), "licenses": Counter(data["licenses"])})


def judge(pmcid: str, data: bytes, entry: Entry | None, options: Options) -> tuple[list[str], str | None, str]:
    """Decide one article: (chunks, None, "") when kept, ([], reason, detail) when dropped."""
    if entry is None:
        return [], "not_in_file_list", ""
    if entry.license not in {normalize_license(x) for x in options.licenses}:
        return [], "license", entry.license
    if entry.retracted and not options.keep_retracted:
        return [], "retracted", ""
    try:
        article = parse_article(data)
    except JatsError as err:
        return [], "malformed_xml", str(err)
    chunks = chunk_paragraphs(article.paragraphs(), options.max_words)
    if not chunks:
        return [], "no_text", "no title, abstract or body text"
    return chunks, None, ""


class _Writer:
    """Buffers one part (chunks + drops) and commits it with the progress record that covers it."""

    def __init__(self, out: Path, progress: dict, stats: Stats, tokenizer):
        self.out, self.progress, self.stats, self.tokenizer = out, progress, stats, tokenizer
        self.chunks: list[dict] = []
        self.drops: list[dict] = []

    def keep(self, chunks: list[str], where: dict, test, mask: bool) -> None:
        """Add an article's chunks; with a test set, those overlapping a test question are dropped or masked."""
        if test is not None:
            from training.contamination import decontaminate

            checked = decontaminate(test, chunks, mask)
        else:
            checked = [(text, {}) for text in chunks]
        member = where.pop("member")
        for i, (text, matches) in enumerate(checked):
            chunk_id = f"{where['pmcid']}-{i}"
            if matches:
                detail = "; ".join(f"{t} {q} {'+'.join(fs)}" for t, qs in matches.items() for q, fs in qs.items())
                self.drop("contaminated" if text is None else "contaminated_masked", id=chunk_id,
                          pmcid=where["pmcid"], package=where["package"], member=member, chunk=i, detail=detail,
                          matches=matches)
            if text is not None:
                words = len(text.split())
                self.stats.chunks += 1
                self.stats.words += words
                self.chunks.append({"id": chunk_id, **where, "chunk": i, "words": words, "text": text})

    def drop(self, reason: str, **row) -> None:
        if reason not in DROP_REASONS:
            raise KeyError(f"unknown drop reason {reason!r}; valid: {', '.join(DROP_REASONS)}")
        self.stats.dropped[reason] += 1
        self.drops.append({**row, "reason": reason})

    def commit(self, package: str, articles_done: int, complete: bool) -> None:
        index = self.progress["next_part"]
        name = f"part-{index:05d}"
        if self.chunks:
            if self.tokenizer is not None:
                lengths = self.tokenizer([c["text"] for c in self.chunks], add_special_tokens=False)["input_ids"]
                self.stats.tokens = (self.stats.tokens or 0) + sum(len(ids) for ids in lengths)
            data = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self.chunks).encode()
            atomic_write_bytes(self.out / f"{name}.jsonl", data)
            self.progress["parts"].append({"file": f"{name}.jsonl", "chunks": len(self.chunks),
                                           "words": sum(c["words"] for c in self.chunks),
                                           "sha256": sha256_file(self.out / f"{name}.jsonl")})
        if self.drops:
            data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in self.drops).encode()
            atomic_write_bytes(self.out / f"{name}.dropped.jsonl", data)
        if self.chunks or self.drops:
            self.progress["next_part"] = index + 1
        self.progress["packages"][package] = {"articles_done": articles_done, "complete": complete}
        self.progress["stats"] = self.stats.to_dict()
        _write_json(self.out / "progress.json", self.progress)
        self.chunks, self.drops = [], []


def prepare_corpus(packages: list[Path], output: Path, options: Options | None = None,
                   file_lists: list[Path] | None = None, progress_bar: bool = True) -> dict:
    """Build (or resume building) the corpus in `output`; returns the manifest."""
    from tqdm.auto import tqdm

    options = options or Options()
    output, packages = Path(output), [Path(p) for p in packages]
    for package in packages:  # every input is checked before the output folder exists
        if not package.is_file():
            raise UsageError(f"package {package} does not exist (expected a PMC OA bulk package .tar.gz)")
        if not file_lists and not default_file_list(package).is_file():
            raise UsageError(f"no file list for {package.name}: expected {default_file_list(package).name} beside "
                             "it, or pass --file-list (PMC publishes one CSV per package)")
    if options.decontaminate_mode not in ("drop", "mask"):
        raise UsageError(f"--decontaminate-mode {options.decontaminate_mode}: expected drop or mask")
    shared_list = _merge_lists(file_lists) if file_lists else None
    key, test = options.key(), None
    if options.decontaminate_against:
        from medtasks.store import default_store
        from training.contamination import TestSet, parse_tasks

        test = TestSet.load(Path(options.store) if options.store else default_store(),
                            parse_tasks(list(options.decontaminate_against)), options.ngrams)
        key["test_data"] = test.fingerprint
    progress = _load_progress(output, key)
    output.mkdir(parents=True, exist_ok=True)
    stats = Stats.from_dict(progress["stats"]) if progress.get("stats") else Stats()
    tokenizer = _load_tokenizer(options.tokenizer) if options.tokenizer else None
    if tokenizer is not None and stats.tokens is None:
        stats.tokens = 0
    writer = _Writer(output, progress, stats, tokenizer)
    for package in packages:
        state = progress["packages"].get(package.name, {"articles_done": 0, "complete": False})
        if state["complete"]:
            continue
        entries = shared_list if shared_list is not None else read_file_list(default_file_list(package))
        skip = state["articles_done"]
        bar = tqdm(total=len(entries) if shared_list is None else None, initial=skip, unit="article",
                   desc=package.name, disable=not progress_bar)
        done = 0
        for name, archive, member in iter_package(package):
            done += 1
            if done <= skip:  # already in a committed part
                continue
            pmcid = article_id(name)
            entry = entries.get(pmcid)
            stats.articles_read += 1
            stats.licenses[entry.license if entry else "unknown"] += 1
            data = archive.extractfile(member).read()
            chunks, reason, detail = judge(pmcid, data, entry, options)
            if reason:
                writer.drop(reason, pmcid=pmcid, package=package.name, member=name, detail=detail)
                if reason == "malformed_xml":
                    log.warning("%s:%s skipped: %s", package.name, name, detail)
            else:
                stats.articles_kept += 1
                where = {"pmcid": pmcid, "license": entry.license, "package": package.name, "member": name}
                writer.keep(chunks, where, test, options.decontaminate_mode == "mask")
            bar.update(1)
            if len(writer.chunks) >= options.part_chunks:
                writer.commit(package.name, done, complete=False)
        writer.commit(package.name, done, complete=True)
        bar.close()
    manifest = {"format": FORMAT, "options": key, "packages": progress["packages"],
                **stats.to_dict(), "parts": progress["parts"]}
    _write_json(output / "manifest.json", manifest)
    return manifest


def corpus_files(corpus: Path) -> list[Path]:
    """The chunk files of a prepared corpus (from its manifest), or a single JSONL file itself."""
    corpus = Path(corpus)
    if corpus.is_file():
        return [corpus]
    if not corpus.exists():
        raise UsageError(f"corpus {corpus} does not exist: a folder made by `medeval corpus` or a JSONL file")
    manifest = corpus / "manifest.json"
    if not manifest.exists():
        raise UsageError(f"{corpus} has no manifest.json: prepare it with `medeval corpus` first")
    return [corpus / part["file"] for part in json.loads(manifest.read_text())["parts"]]


def _merge_lists(paths: list[Path]) -> dict[str, Entry]:
    merged: dict[str, Entry] = {}
    for path in paths:
        merged.update(read_file_list(Path(path)))
    return merged


# The command-line flag of each option, to name what differs when a resume is refused.
OPTION_FLAGS = {"licenses": "--license", "max_words": "--max-words", "part_chunks": "--part-chunks",
                "keep_retracted": "--keep-retracted", "tokenizer": "--tokenizer",
                "decontaminate_against": "--decontaminate-against", "decontaminate_mode": "--decontaminate-mode",
                "ngrams": "--ngram/--min-tokens/--char-ngram/--char-min", "store": "--store",
                "test_data": "the test questions in the store"}


def _load_progress(output: Path, key: dict) -> dict:
    path = output / "progress.json"
    if not path.exists():
        return {"format": FORMAT, "options": key, "packages": {}, "parts": [], "next_part": 0}
    progress = json.loads(path.read_text())
    old, new = progress.get("options", {}), key
    if old != new:
        show = lambda v: ", ".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
        changed = "; ".join(f"{OPTION_FLAGS.get(k, k)} {show(old.get(k))} -> {show(new.get(k))}"
                            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
        raise UsageError(f"{output} was prepared with other options ({changed}): rerun with the same options to "
                         f"resume, or start afresh with a new --output folder or delete {output}")
    return progress


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=False)


def _write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())
