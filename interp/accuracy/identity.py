"""What a results folder holds the results of, so that a resume can never mix two runs.

A question's id is its place in its benchmark (``structured/stem/0``, ``mmlu/anatomy/12``), so the same
id means another question under other settings. ``run.json`` records everything that shapes a
record: the question set itself (count and a digest of every question, so other data files,
subjects, limits or table sizes show), the settings that chose it as the user gave them, the
model (architecture and a fingerprint of its weights: the same model given by another path is
the same model), and the generation settings. A run into a folder whose ``run.json`` differs is
refused, naming the first setting that differs and both values. It is written only after every
check of the run has passed, so a refused run leaves nothing behind that would block the
corrected one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

import torch

from interp.accuracy.data import Item
from interp.files import read_json, write_atomic
from interp.model.load import describe_model
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel

FILE = "run.json"
BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}  # a dtype's bit patterns, by element size


@torch.no_grad()
def weights_fingerprint(model: torch.nn.Module | InterpModel, samples: int = 4096) -> str:
    """sha256 over every parameter's name, shape, dtype, the sum of all its values' bit patterns
    (as integers: exact, so the same whatever the thread count or device sums them in) and
    ``samples`` evenly spaced values: two models that differ in any trained weight differ here, at
    the cost of one pass over the weights on their device (a full hash of a 7B model would copy
    14 GB to the CPU)."""
    digest = hashlib.sha256()
    for name, weight in sorted(model.named_parameters(), key=lambda named: named[0]):
        flat = weight.detach().reshape(-1)
        picked = flat[:: max(1, flat.numel() // samples)].float().cpu()
        checksum = int(flat.contiguous().view(BITS[flat.element_size()]).sum(dtype=torch.int64))
        digest.update(f"{name} {tuple(weight.shape)} {weight.dtype} {checksum}".encode())
        digest.update(picked.numpy().tobytes())
    return digest.hexdigest()


def questions_digest(items: Sequence[Item]) -> str:
    """sha256 of every question in order: id, text, options and answer."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(asdict(item), sort_keys=True).encode())
    return digest.hexdigest()


def model_identity(model: InterpModel) -> dict[str, Any]:
    """What the model is, independent of where it was loaded from or runs."""
    described = {k: v for k, v in describe_model(model).items() if k not in ("name", "device")}
    return {**described, "weights": weights_fingerprint(model)}


def run_record(model: dict[str, Any], items: Sequence[Item], generation: dict[str, Any],
               source: dict[str, Any] | None = None) -> dict[str, Any]:
    """``model``: its :func:`model_identity`; ``source``: how the caller chose the questions and
    the model (benchmark, data, subjects, limit, table sizes, the model's path), recorded to name
    what changed."""
    return json.loads(json.dumps({
        "source": source or {}, "questions": {"count": len(items), "sha256": questions_digest(items)},
        "model": model, "generation": generation,
    }))


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _shown(value: Any) -> str:
    return "(not given)" if value is None else repr(value)


def difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first setting in which two run records differ, in words; ``None`` when they agree.
    Where things were loaded from (paths) counts only when what was loaded differs too."""
    old_source, new_source = old.get("source", {}), new.get("source", {})
    for key in [k for k in (*old_source, *new_source) if k not in ("data", "model")]:
        if old_source.get(key) != new_source.get(key):
            return (f"{_option(key)}: this folder holds a run with {_shown(old_source.get(key))}, this run has "
                    f"{_shown(new_source.get(key))}")
    if old.get("questions") != new.get("questions"):
        if old_source.get("data") != new_source.get("data"):
            return f"--data: this folder's questions came from {old_source.get('data')}, this run reads {new_source.get('data')}"
        return (f"the questions: this folder holds {old['questions']['count']} questions, this run has "
                f"{new['questions']['count']}, and their text differs (the data files changed since)")
    if old.get("model") != new.get("model"):
        changed = [k for k in new["model"] if old["model"].get(k) != new["model"].get(k)]
        return (f"--model: this folder holds answers of {old_source.get('model')} and this run loads "
                f"{new_source.get('model')}, whose {', '.join(changed)} differ")
    for key in new.get("generation", {}):
        if old.get("generation", {}).get(key) != new["generation"][key]:
            return (f"{_option(key)}: this folder holds a run with {_shown(old['generation'].get(key))}, this run "
                    f"has {_shown(new['generation'][key])}")
    return None


def check_same_model(out: Path, model: dict[str, Any]) -> None:
    """Refuse to add to ``out``'s records with a model other than the one that answered them
    (``model``: its :func:`model_identity`)."""
    path = out / FILE
    if not path.is_file():
        raise UsageError(f"{out} has no {FILE}, so the model that answered cannot be checked; the forced answer needs "
                         "the same model: rerun the questions instead")
    old = read_json(path).get("model", {})
    changed = [key for key in model if old.get(key) != model[key]]
    if changed:
        raise UsageError(f"--model is not the model whose answers {out} holds (its {', '.join(changed)} differ); "
                         "give the model that answered them")


def record_run(out: Path, record: dict[str, Any]) -> None:
    """Write ``run.json`` into ``out``, or check that the run already there is this one."""
    path = out / FILE
    if path.is_file():
        changed = difference(read_json(path), record)
        if changed:
            raise UsageError(f"{out} holds another run's results, so resuming it would mix them. {changed}. "
                             "Use another --results folder, or delete this one to start afresh")
    elif any(out.glob("*.jsonl")):
        raise UsageError(f"{out} holds results but no {FILE} (written by an older interp): its questions and model "
                         "cannot be checked; use another --results folder, or `--rescore` to re-read it")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=2))  # every rank of a sharded run writes the same record
