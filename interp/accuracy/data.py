"""Benchmark items from their official file formats (the registry, :mod:`interp.accuracy.benchmarks`,
says which benchmark reads which, and loads them through ``datasets`` by name when online).

- MMLU: a folder of ``<subject>_test.csv`` files, no header: question, A, B, C, D, answer.
  Read with the csv module, so an option reading ``None`` stays text.
- PIQA: ``valid.jsonl`` (goal, sol1, sol2) with ``valid-labels.lst`` (0/1).
- SIQA: ``dev.jsonl`` (context, question, answerA/B/C) with ``dev-labels.lst`` (1-3).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from interp.accuracy.prompts import letters

# An option that names other options by place or letter: reordering would change its meaning.
# A letter is a capital standing alone, or any letter in parentheses ("(b)").
_LETTER = r"(?:\([A-Ja-j]\)|(?-i:\b[A-J]\b))"
POINTS_AT_OPTIONS = re.compile(
    r"\b(?:above|below|of these|of the (?:options|choices|answers|others))\b"
    rf"|\b(?:options?|choices?|answers?)\s*{_LETTER}"
    rf"|{_LETTER}\s*(?:and|or|nor|&)\s*{_LETTER}", re.I)

MMLU_CATEGORIES = {
    "STEM": ["abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
             "college_computer_science", "college_mathematics", "college_physics", "computer_security",
             "conceptual_physics", "electrical_engineering", "elementary_mathematics", "high_school_biology",
             "high_school_chemistry", "high_school_computer_science", "high_school_mathematics",
             "high_school_physics", "high_school_statistics", "machine_learning"],
    "Humanities": ["formal_logic", "high_school_european_history", "high_school_us_history",
                   "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
                   "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
                   "world_religions"],
    "Social Sciences": ["econometrics", "high_school_geography", "high_school_government_and_politics",
                        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
                        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
                        "sociology", "us_foreign_policy"],
    "Other": ["business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
              "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
              "professional_accounting", "professional_medicine", "virology"],
}
SUBJECT_CATEGORY = {subject: category for category, subjects in MMLU_CATEGORIES.items() for subject in subjects}


class DataError(ValueError):
    """A benchmark file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Item:
    """One multiple-choice question, whatever the benchmark."""

    id: str
    benchmark: str
    subject: str
    category: str
    question: str
    options: tuple[str, ...]
    answer: str  # the correct letter

    def __post_init__(self) -> None:
        if self.answer not in letters(len(self.options)):
            raise DataError(f"{self.id}: answer {self.answer!r} is not one of {letters(len(self.options))}")

    @property
    def permutable(self) -> bool:
        """Whether the options can be reordered without changing the question: none of them
        points at the others ("all of the above", "both A and B", "option C")."""
        return not any(POINTS_AT_OPTIONS.search(option) for option in self.options)

    def rotated(self, shift: int) -> "Item":
        """The same question with every option moved ``shift`` places on (the last ones wrapping to
        the front), and the answer's letter moved with its option."""
        if not self.permutable:
            raise DataError(f"{self.id}: an option refers to the others, so they cannot be reordered")
        n = len(self.options)
        shift %= n
        options = self.options[n - shift:] + self.options[: n - shift]
        answer = letters(n)[(letters(n).index(self.answer) + shift) % n]
        return dataclasses.replace(self, options=options, answer=answer)


def mmlu_item(subject: str, number: int, question: str, options: Sequence[str], answer: str) -> Item:
    return Item(f"mmlu/{subject}/{number}", "mmlu", subject, SUBJECT_CATEGORY.get(subject, "Other"), question,
                tuple(options), answer)


def piqa_item(index: int, row: dict, label: int) -> Item:
    """A PIQA row (goal, sol1, sol2) with its 0/1 label."""
    return Item(f"piqa/{index}", "piqa", "piqa", "PIQA", row["goal"], (row["sol1"], row["sol2"]), "AB"[label])


def siqa_item(index: int, row: dict, label: int) -> Item:
    """A Social IQa row (context, question, answerA-C) with its 1-3 label; the question is the
    context and the question on two lines, as in the paper."""
    return Item(f"siqa/{index}", "siqa", "siqa", "SIQA", row["context"] + "\n" + row["question"],
                (row["answerA"], row["answerB"], row["answerC"]), "ABC"[label - 1])


def load_mmlu(folder: str | Path, subjects: Sequence[str] | None = None) -> list[Item]:
    folder = Path(folder)
    if (folder / "test").is_dir():
        folder = folder / "test"
    files = sorted(folder.glob("*_test.csv"))
    if not files:
        raise DataError(f"no <subject>_test.csv files in {folder}; pass the MMLU test folder (the 57 subject CSVs)")
    available = {f.name[: -len("_test.csv")]: f for f in files}
    chosen = list(subjects) if subjects else sorted(available)
    unknown = [s for s in chosen if s not in available]
    if unknown:
        raise DataError(f"subjects {unknown} not in {folder}; available: {sorted(available)}")
    items = []
    for subject in chosen:
        path = available[subject]
        for line, row in _csv_rows(path):
            if len(row) != 6:
                raise DataError(f"{path}:{line}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}")
            question, *options, answer = row
            if answer.strip() not in ("A", "B", "C", "D"):
                raise DataError(f"{path}:{line}: answer must be one letter, A, B, C or D, got {answer!r}")
            empty = [name for name, text in zip(("question", "A", "B", "C", "D"), (question, *options)) if not text.strip()]
            if empty:
                raise DataError(f"{path}:{line}: empty {', '.join(empty)}; every question needs its text and four options")
            items.append(mmlu_item(subject, line, question, options, answer.strip()))
    return items


def _text(path: Path) -> str:
    """A data file's text, a byte-order mark dropped."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None


def _not_utf8(path: Path, err: UnicodeDecodeError) -> DataError:
    return DataError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the file as UTF-8")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of a CSV file, a byte-order mark dropped; an encoding other than UTF-8 or a
    malformed row is refused naming ``file:line`` (the csv module's errors name neither)."""
    line = 0  # the row's number: a question's id is its subject and this number
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                yield line, row
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None
    except csv.Error as err:
        raise DataError(f"{path}:{line + 1}: not a well-formed CSV row ({err})") from None


def _jsonl(path: Path, keys: Iterable[str]) -> list[dict]:
    return [row for _, row in jsonl_rows(path, keys)]


def jsonl_rows(path: Path, keys: Iterable[str]) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file whose objects hold text in
    every field of ``keys``; anything else is refused naming ``file:line`` (the benchmarks' files,
    and fine-tuning's own rows)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    keys = list(keys)
    rows = []
    lines = _text(path).splitlines()
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{line}: not valid JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line}: expected a JSON object with fields {list(keys)}")
        missing = [k for k in keys if k not in row]
        if missing:
            raise DataError(f"{path}:{line}: missing fields {missing}")
        not_text = [k for k in keys if not isinstance(row[k], str)]
        if not_text:
            raise DataError(f"{path}:{line}: fields {not_text} must be text, got "
                            f"{', '.join(repr(row[k]) for k in not_text)}")
        empty = [k for k in keys if not row[k].strip()]
        if empty:
            raise DataError(f"{path}:{line}: fields {empty} are empty; every field needs its text")
        rows.append((line, row))
    return rows


def _labels(path: Path, allowed: set[str], count: int, data: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"label file {path} does not exist; it must sit beside {data.name}")
    labels = [t.strip() for t in _text(path).splitlines()]
    while labels and not labels[-1]:  # the file's last newline
        labels.pop()
    for line, label in enumerate(labels, start=1):
        if not label:
            raise DataError(f"{path}:{line}: a blank line; labels are one per question, in order, so a blank "
                            "line would shift every label after it: remove it")
        if label not in allowed:
            raise DataError(f"{path}:{line}: label {label!r} is not one of {sorted(allowed)}")
    if len(labels) != count:
        raise DataError(f"{path} has {len(labels)} labels but {data} has {count} questions")
    return labels


def load_piqa(path: str | Path) -> list[Item]:
    """``valid.jsonl`` (or its folder); labels from ``valid-labels.lst`` beside it."""
    path = Path(path)
    path = path / "valid.jsonl" if path.is_dir() else path
    rows = _jsonl(path, ("goal", "sol1", "sol2"))
    labels = _labels(path.with_name(path.stem + "-labels.lst"), {"0", "1"}, len(rows), path)
    return [piqa_item(i, row, int(label)) for i, (row, label) in enumerate(zip(rows, labels))]


def load_siqa(path: str | Path) -> list[Item]:
    """``dev.jsonl`` (or its folder); labels from ``dev-labels.lst`` beside it."""
    path = Path(path)
    path = path / "dev.jsonl" if path.is_dir() else path
    rows = _jsonl(path, ("context", "question", "answerA", "answerB", "answerC"))
    labels = _labels(path.with_name(path.stem + "-labels.lst"), {"1", "2", "3"}, len(rows), path)
    return [siqa_item(i, row, int(label)) for i, (row, label) in enumerate(zip(rows, labels))]
