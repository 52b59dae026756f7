"""One question answered under one variant: the harness's record, and the only place that knows
how it is written (one JSON line of ``<variant>.jsonl``).

Every reader (statistics, summaries, the report page, rescoring, fine-tuning's held-out accuracy)
takes :class:`Answer` and asks it: ``answer.correct("final")``, ``answer.predictions["paper"]``.
The line keeps a ``pred_<mode>`` and ``correct_<mode>`` field per extraction mode, so a results
file reads on its own (and results written before this class still load).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Sequence

from interp.accuracy.data import Item
from interp.accuracy.extraction import MODES, extract_answer

OVER_CONTEXT = "prompt plus max_new_tokens exceeds the model's context"
FORCED = "forced"
# The readings of options scored by log-likelihood: the highest, and the highest per character
# (lm-evaluation-harness's acc and acc_norm).
ACC, ACC_NORM = "acc", "acc_norm"
SCORED = (ACC, ACC_NORM)


@dataclass(frozen=True)
class Answer:
    """The question (``item``), what was generated for it, and every extraction mode's reading."""

    item: Item
    prompt_tokens: int
    generated_tokens: int  # the EOS, when one came, included: it is a computed token
    response: str | None  # None when the question was skipped
    predictions: dict[str, str | None]  # extraction mode -> the letter it read, or None
    interventions: tuple[dict[str, Any], ...] = ()
    skipped: str | None = None  # why the question was not run
    # The model's forced answer (interp.accuracy.forced) is the reading predictions["forced"], when
    # computed; this is its probability among the option letters.
    forced_probability: float | None = None
    # Scored by log-likelihood (interp.accuracy.loglik): each option's summed log-probability, in
    # option order; nothing was generated (``response`` is None, ``generated_tokens`` 0).
    logprobs: tuple[float, ...] | None = None

    def __repr__(self) -> str:  # the question and response would fill a notebook cell
        read = ", ".join(f"{mode} {letter}" for mode, letter in self.predictions.items())
        return (f"Answer({self.id}: right {self.item.answer}; {read}; "
                f"{'skipped: ' + self.skipped if self.skipped else f'{self.generated_tokens} tokens'})")

    @classmethod
    def read(cls, item: Item, response: str, *, prompt_tokens: int, generated_tokens: int,
             interventions: tuple[dict[str, Any], ...] = ()) -> "Answer":
        """A response, read by every extraction mode."""
        # JSON-normal (lists, not tuples), so fresh and resumed answers compare equal.
        normal = tuple(json.loads(json.dumps(list(interventions))))
        return cls(item, prompt_tokens, generated_tokens, response, _predictions(item, response), normal)

    @classmethod
    def scored(cls, item: Item, logprobs: Sequence[float], predictions: dict[str, str], *, prompt_tokens: int,
               interventions: tuple[dict[str, Any], ...] = ()) -> "Answer":
        """Options scored by log-likelihood, with the letters each reading of them picks."""
        normal = tuple(json.loads(json.dumps(list(interventions))))
        return cls(item, prompt_tokens, 0, None, dict(predictions), normal, logprobs=tuple(map(float, logprobs)))

    @classmethod
    def skip(cls, item: Item, prompt_tokens: int, why: str = OVER_CONTEXT, modes: Sequence[str] = MODES) -> "Answer":
        return cls(item, prompt_tokens, 0, None, {mode: None for mode in modes}, (), why)

    @property
    def id(self) -> str:
        return self.item.id

    def correct(self, mode: str) -> bool:
        """Whether ``mode`` read the right letter (an unanswered or skipped question is wrong)."""
        return self.skipped is None and self.predictions.get(mode) == self.item.answer

    def answered(self, mode: str) -> bool:
        return self.predictions.get(mode) is not None

    @property
    def has_forced(self) -> bool:
        return FORCED in self.predictions

    def with_forced(self, letter: str, probability: float) -> "Answer":
        return dataclasses.replace(self, predictions={FORCED: letter, **self.predictions}, forced_probability=probability)

    def unforced(self) -> "Answer":
        """The answer without its forced reading (to compute it again)."""
        return dataclasses.replace(self, predictions={k: v for k, v in self.predictions.items() if k != FORCED},
                                   forced_probability=None)

    def rescored(self) -> "Answer":
        """The same response read again by the current extractors (a forced answer is kept: it is
        the model's, not a reading of the text)."""
        if self.skipped is not None or self.response is None:
            return self
        kept = {FORCED: self.predictions[FORCED]} if self.has_forced else {}
        return dataclasses.replace(self, predictions={**kept, **_predictions(self.item, self.response)})

    def to_line(self) -> str:
        return json.dumps({
            **dataclasses.asdict(self.item), "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens, "response": self.response, "skipped": self.skipped,
            **{f"pred_{mode}": letter for mode, letter in self.predictions.items()},
            **{f"correct_{mode}": self.correct(mode) for mode in self.predictions},
            "interventions": list(self.interventions),
            **({"forced_probability": self.forced_probability} if self.has_forced else {}),
            **({"logprobs": list(self.logprobs)} if self.logprobs is not None else {}),
        })

    @classmethod
    def from_line(cls, text: str) -> "Answer":
        """An answer from its line; raises ``ValueError`` (or ``KeyError``) for anything else."""
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        fields = {f.name for f in dataclasses.fields(Item)}
        item = Item(**{**{k: record[k] for k in fields}, "options": tuple(record["options"])})
        predictions = {key[len("pred_"):]: value for key, value in record.items() if key.startswith("pred_")}
        return cls(item, record["prompt_tokens"], record["generated_tokens"], record["response"], predictions,
                   tuple(record["interventions"]), record["skipped"], record.get("forced_probability"),
                   tuple(record["logprobs"]) if record.get("logprobs") is not None else None)


def _predictions(item: Item, response: str) -> dict[str, str | None]:
    return {mode: extract_answer(response, item.options, mode, item.benchmark) for mode in MODES}
