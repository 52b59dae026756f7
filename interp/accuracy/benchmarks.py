"""The benchmarks, one :class:`Benchmark` value each, in :data:`BENCHMARKS`: how its questions are
read (its files, or ``datasets`` by name), which options apply to it, how log-likelihood scoring
writes it (lm-evaluation-harness's task), whether its categories are compared, and how its
responses are read (final extraction's settings). The command
line, the harness, ``reproduce`` and the pages read them from here: adding a benchmark is one
entry (and, where it has files of its own format, their reader in :mod:`interp.accuracy.data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from interp.accuracy import structured
from interp.accuracy.commitment import Reader
from interp.accuracy.data import (
    DataError, Item, load_mmlu, load_piqa, load_siqa, mmlu_item, piqa_item, siqa_item,
)


def question_answer(item: Item) -> tuple[str, str]:
    """lm-evaluation-harness's cloze context for most tasks: ``Question: ...`` then ``\\nAnswer:``."""
    return "Question: " + item.question.strip(), "\nAnswer:"


def social_iqa(item: Item) -> tuple[str, str]:
    """lm-evaluation-harness's ``social_iqa``: the context and the question on one line."""
    context, _, question = item.question.rpartition("\n")
    return f"Q: {context} {question}", "\nA:"


@dataclass(frozen=True)
class Hub:
    """Where ``datasets`` finds a benchmark by name, and how one of its rows becomes an item."""

    name: str
    config: str | None
    split: str
    item: Callable[[int, dict[str, Any]], Item]


@dataclass(frozen=True)
class Benchmark:
    name: str  # as --benchmark names it, and Item.benchmark
    title: str  # on pages
    files: str | None  # what --data names; None: the questions are generated (no files, no hub)
    read: Callable[[Path, Sequence[str] | None], list[Item]] | None = None  # the files, some subjects
    hub: Hub | None = None
    subjects: bool = False  # --subjects applies: its subjects are files to choose among
    categories: bool = False  # its subjects fall into categories a claim compares (MMLU: STEM against the rest)
    forms: tuple[str, ...] = ("cloze",)  # the log-likelihood forms lm-evaluation-harness defines for it
    cloze: Callable[[Item], tuple[str, str]] = question_answer  # its cloze context: (question text, cue)
    subject_line: bool = False  # lm-evaluation-harness opens the context with its subject line
    reader: Reader = Reader()  # how final extraction reads its responses (interp.accuracy.commitment)

    @property
    def generated(self) -> bool:
        return self.files is None

    def load(self, data: str | Path | None = None, subjects: Sequence[str] | None = None) -> list[Item]:
        """The questions from local files (``data``) or, without them, through ``datasets``."""
        if self.generated:
            raise DataError(f"the {self.name} benchmark's questions are generated (interp.accuracy.structured."
                            "held_out_items), not read from files")
        if data is not None:
            assert self.read is not None
            return self.read(Path(data), subjects)
        if self.hub is None:
            raise DataError(f"{self.name} cannot be loaded by name; pass its files ({self.files})")
        try:
            import datasets
        except ImportError as err:
            raise DataError("loading by name needs the datasets library: pip install datasets") from err
        try:
            rows = datasets.load_dataset(self.hub.name, self.hub.config, split=self.hub.split)
        except Exception as err:  # datasets raises many types when offline
            raise DataError(f"could not load {self.hub.name} through datasets ({err.__class__.__name__}); "
                            "pass the local files instead (see ../shared/data or the benchmark's site)") from err
        return [self.hub.item(i, row) for i, row in enumerate(rows)]


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("mmlu", "MMLU", "the MMLU test folder (the 57 subject CSVs)", lambda path, subjects: load_mmlu(path, subjects),
              Hub("cais/mmlu", "all", "test",
                  lambda i, r: mmlu_item(r["subject"], i, r["question"], r["choices"], "ABCD"[r["answer"]])),
              subjects=True, categories=True, forms=("letter", "cloze"), subject_line=True),
    Benchmark("piqa", "PIQA", "PIQA's valid.jsonl (valid-labels.lst beside it)", lambda path, _: load_piqa(path),
              Hub("ybisk/piqa", None, "validation", lambda i, r: piqa_item(i, r, int(r["label"])))),
    Benchmark("siqa", "SIQA", "SIQA's dev.jsonl (dev-labels.lst beside it)", lambda path, _: load_siqa(path),
              Hub("allenai/social_i_qa", None, "validation", lambda i, r: siqa_item(i, r, int(r["label"]))),
              cloze=social_iqa),
    Benchmark(structured.BENCHMARK, "structured questions", None, forms=("letter", "cloze")),
)}
FILE_BENCHMARKS = tuple(name for name, b in BENCHMARKS.items() if not b.generated)  # the paper's three
OTHER = Benchmark("other", "", None)  # items of a benchmark not in the registry (hand-made ones): the defaults


def benchmark(name: str) -> Benchmark:
    """The registry's entry for ``name``, refused naming the choices."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def load_benchmark(name: str, path: str | Path | None = None, subjects: Sequence[str] | None = None) -> list[Item]:
    """A benchmark from local files (``path``) or, without a path, through ``datasets``."""
    return benchmark(name).load(path, subjects)
