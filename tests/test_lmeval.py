"""interp as an lm-evaluation-harness model, on tasks defined here from local JSON files (offline):
no intervention equals the harness's own Hugging Face model; the emulation's log-likelihoods and
generations equal an independently written attention with the same edit (tests/reference.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from interp.accuracy.lmeval import InterpLM, interventions_from_args  # noqa: E402
from interp.tiny import random_decoder  # noqa: E402
from tests.reference import Edit, reference_copy, reference_greedy  # noqa: E402
from tests.test_interventions_vs_hf import set_edit  # noqa: E402

DOCS = [
    {"question": "Ann has a red hat. Who has the hat?", "choices": ["Ann", "Bob", "Cy"], "answer": 0},
    {"question": "Bob has a blue cup. What is blue?", "choices": ["the hat", "the cup"], "answer": 1},
    {"question": "Dee sees a big dog. What is big?", "choices": ["the cat", "the box", "the dog"], "answer": 2},
    {"question": "Eve has a small cat. Who has a cat?", "choices": ["Eve", "Dee"], "answer": 0},
]

MC = """task: local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""

GEN = """task: local_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices[answer]}}}}"
generation_kwargs:
  until: ["@@"]
  max_gen_toks: 10
  do_sample: false
metric_list:
  - metric: exact_match
"""


def make_setup(root, sp_model, architecture):
    (root / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "local_mc.yaml").write_text(MC.format(data=root / "docs.jsonl"))
    (tasks / "local_gen.yaml").write_text(GEN.format(data=root / "docs.jsonl"))
    model = root / "model"
    hf = random_decoder(architecture, n_layers=4, vocab_size=400, init_std=0.2, seed=11)
    hf.save_pretrained(model)
    shutil.copyfile(sp_model, model / "tokenizer.model")
    return model, TaskManager(include_path=str(tasks)), reference_copy(hf)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sp_model):
    return make_setup(tmp_path_factory.mktemp("lmeval"), sp_model, "llama")


def evaluate(lm, task_manager, task):
    results = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=task_manager, log_samples=True,
                                      bootstrap_iters=0)
    return results["results"][task], sorted(results["samples"][task], key=lambda s: s["doc_id"])


def flat(samples):
    return torch.tensor([float(r[0][0]) for s in samples for r in s["resps"]], dtype=torch.float64)


@pytest.mark.slow
def test_without_intervention_equals_the_harness_own_hf_model(setup):
    folder, tasks, _ = setup
    lm = InterpLM(str(folder), batch_size=2)
    ours, our_samples = evaluate(lm, tasks, "local_mc")
    # the same tokenizer object: the comparison is of the models
    theirs, their_samples = evaluate(HFLM(pretrained=str(folder), tokenizer=lm.tokenizer, device="cpu", dtype="float32",
                                          batch_size=2), tasks, "local_mc")
    assert ours["acc,none"] == theirs["acc,none"]
    assert (flat(our_samples) - flat(their_samples)).abs().max() < 1e-4


def reference_loglikelihood(ref, tokenizer, context: str, continuation: str) -> float:
    """Sum of log-probabilities of the continuation's tokens after the context, under ``ref``."""
    whole = tokenizer(context + continuation).input_ids
    start = len(tokenizer(context).input_ids)
    with torch.no_grad():
        logits = ref(torch.tensor([whole])).logits[0].double().log_softmax(-1)
    return sum(logits[i - 1, whole[i]].item() for i in range(start, len(whole)))


@pytest.mark.slow
def test_emulation_loglikelihoods_equal_the_reference_and_differ_from_the_baseline(setup):
    folder, tasks, ref = setup
    lm = InterpLM(str(folder), intervention="emulation", alpha=0.6, threshold=0.05, batch_size=3)
    _, samples = evaluate(lm, tasks, "local_mc")
    _, plain = evaluate(InterpLM(str(folder), batch_size=3), tasks, "local_mc")
    set_edit(Edit("emulation", alpha=0.6, threshold=0.05, last_layer=3), [0])
    expected = []
    for sample in samples:
        doc = sample["doc"]
        for choice in doc["choices"]:
            expected.append(reference_loglikelihood(ref, lm.tokenizer, f"Question: {doc['question']}\nAnswer:", f" {choice}"))
    got = flat(samples)
    assert (got - torch.tensor(expected, dtype=torch.float64)).abs().max() < 1e-3
    assert (got - flat(plain)).abs().max() > 1e-2  # the edit matters


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["llama", "gemma2"])  # Gemma 2: sliding window, soft-capping
def test_generate_until_runs_the_emulation_at_every_step(architecture, setup, sp_model, tmp_path):
    folder, tasks, ref = setup if architecture == "llama" else make_setup(tmp_path, sp_model, architecture)
    lm = InterpLM(str(folder), intervention="emulation", alpha=0.6, threshold=0.05, batch_size=4)
    _, samples = evaluate(lm, tasks, "local_gen")
    _, plain = evaluate(InterpLM(str(folder), batch_size=4), tasks, "local_gen")
    for sample in samples:
        ids = lm.tokenizer(f"Question: {sample['doc']['question']}\nAnswer:").input_ids
        set_edit(Edit("emulation", alpha=0.6, threshold=0.05, last_layer=3), [0])
        tokens = reference_greedy(ref, torch.tensor([ids]), [0], steps=10)[0].tolist()
        expected = lm.tokenizer.decode(tokens[: tokens.index(2)] if 2 in tokens else tokens, skip_special_tokens=True)
        assert sample["resps"][0][0] == expected
    assert [s["resps"] for s in samples] != [s["resps"] for s in plain]


def test_prompt_range_methods_are_refused_with_the_reason():
    assert len(interventions_from_args("emulation", {"alpha": 0.3})) == 1
    with pytest.raises(ValueError, match="prompt range, which lm-evaluation-harness"):
        interventions_from_args("prompt-removal", {})
    with pytest.raises(ValueError, match="heads=auto chooses heads on held-out questions"):
        interventions_from_args("act", {"heads": "auto"})
    assert len(interventions_from_args("act", {"heads": "act-llama-2-7b-chat"})) == 1
    with pytest.raises(ValueError, match="'gamma=1' is not a parameter"):
        interventions_from_args("emulation", {"gamma": 1})


@pytest.mark.slow
def test_the_command_line_runs_with_model_interp(setup, tmp_path):
    """As the README writes it: no --device, so lm-eval passes its default ("cuda:0"), which a
    CPU-only machine must take as the CPU."""
    folder, _, _ = setup
    tasks = folder.parent / "tasks"
    done = subprocess.run(
        [sys.executable, "-m", "interp.accuracy.lmeval", "--model", "interp", "--model_args",
         f"pretrained={folder},intervention=emulation,alpha=0.2", "--tasks", "local_mc", "--include_path", str(tasks),
         "--output_path", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "local_mc" in done.stdout and "acc" in done.stdout
