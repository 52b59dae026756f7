"""Head selection by attribution patching against exact per-head evaluation, computed here one
example at a time on the plain Hugging Face reference (tests/reference.py: ACT and PASTA written
again from their released code), sharing no code with interp's selection."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.stats import spearmanr

import interp
from interp.analysis.selection import Reference, select_heads
from interp.tiny import random_decoder
from tests.reference import EDIT, Edit, reference_copy

K = 6


@pytest.fixture(scope="module")
def pair(sp_model):
    """A 7-layer tiny LLaMA and its reference copy, this module's own: no other test's use of a
    shared pair (its attention implementation switched, say) reaches the reference here."""
    hf = random_decoder("llama", n_layers=7, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400, init_std=0.2, seed=7)
    return reference_copy(hf), interp.load_model(hf, tokenizer=sp_model)


def examples() -> list[Reference]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(16):  # lengths 14 to 23: batches are left-padded
        n = int(torch.randint(14, 24, (1,), generator=generator))
        ids = [1] + torch.randint(3, 400, (n - 1,), generator=generator).tolist()
        out.append(Reference(tuple(ids), n - 4, (1, n - 6), f"q{i}"))
    return out


def reference_loss(ref_model, refs, edit_for) -> float:
    """Mean summed NLL of each example's answer, one example at a time, under its edit."""
    total = 0.0
    for example in refs:
        for name, value in vars(edit_for(example)).items():
            setattr(EDIT, name, value)
        EDIT.left_pad, EDIT.state = [0], {}
        with torch.no_grad():
            logprobs = ref_model(torch.tensor([example.ids])).logits[0].float().log_softmax(-1)
        answer = torch.tensor(example.ids[example.answer_start:])
        total -= float(logprobs[example.answer_start - 1 : -1].gather(-1, answer[:, None]).sum())
    return total / len(refs)


CASES = {
    "act": ({"beta": 0.4, "threshold": 0.1},
            lambda layer, head: lambda ex: Edit("act", beta=0.4, threshold=0.1, by_layer={layer: [head]}), 0.9, 5),
    "pasta": ({"alpha": 0.01},
              lambda layer, head: lambda ex: Edit("pasta", alpha=0.01, span=ex.prompt_range, by_layer={layer: [head]},
                                                  input_length=ex.answer_start), 0.4, 3),
}


@pytest.mark.parametrize("method", CASES)
def test_selection_agrees_with_exact_per_head_evaluation(pair, method, tmp_path):
    ref_model, model = pair
    parameters, edit, min_spearman, min_overlap = CASES[method]
    refs = examples()
    selection = select_heads(model, method, refs, k=K, parameters=parameters, batch_size=5, progress=False)

    base = reference_loss(ref_model, refs, lambda ex: Edit("none"))
    exact = torch.tensor([[reference_loss(ref_model, refs, edit(layer, head)) - base for head in range(4)]
                          for layer in range(7)])
    assert selection.base_loss == pytest.approx(base, abs=1e-4)
    assert len(selection.confirmed) == K
    for head in selection.confirmed:  # the confirmation is the exact evaluation
        assert float(selection.exact[head]) == pytest.approx(float(exact[head]), abs=1e-4)
    assert exact.abs().max() > 0.1  # the edits do change the answers' loss
    # The first-order ranking of all 28 heads against the exact one.
    assert spearmanr(selection.estimate.flatten(), exact.flatten()).statistic > min_spearman
    top_estimated = set(selection.estimate.flatten().argsort()[:K].tolist())
    top_exact = set(exact.flatten().argsort()[:K].tolist())
    assert len(top_estimated & top_exact) >= min_overlap
    # The head set: the confirmed heads that lower the loss, and a file the methods take.
    assert selection.chosen and all(exact[head] < 0 for head in selection.chosen)
    path = selection.save(tmp_path / "heads.json")
    written = json.loads(path.read_text())
    assert {int(layer): heads for layer, heads in written["heads"].items()} == selection.heads
    assert interp.SinkCalibration(heads=str(path)).heads == tuple((l, tuple(h)) for l, h in sorted(selection.heads.items()))


def test_selection_refuses_bad_input(pair):
    _, model = pair
    with pytest.raises(ValueError, match="choose from act, pasta"):
        select_heads(model, "nope", examples())
    with pytest.raises(ValueError, match="k=99"):
        select_heads(model, "act", examples(), k=99)
    with pytest.raises(ValueError, match="held-out examples"):
        select_heads(model, "act", [])
    with pytest.raises(ValueError, match="no such parameter"):
        select_heads(model, "act", examples(), parameters={"gamma": 1})
    with pytest.raises(ValueError, match="no answer"):
        Reference((1, 2, 3), 3, (0, 2))


def test_act_preset_is_the_released_llama_2_7b_chat_list(pair):
    # GATECH-EIC/ACT models/augment_index.py, aug_indices_comb_classification[layer - 2]: 29 lists
    # for layers 2-30, the one for layer 28 empty; counted by hand from the file: 184 heads.
    heads = dict(interp.SinkCalibration("act-llama-2-7b-chat").heads)
    assert sorted(heads) == [layer for layer in range(2, 31) if layer != 28]
    assert heads[2] == (2, 8, 12, 13, 16, 17, 20, 25) and heads[30] == (2,) and heads[16] == (0, 29)
    assert sum(map(len, heads.values())) == 184
    _, model = pair  # a 7-layer model has no layer 30: refused, naming the layers
    with pytest.raises(ValueError, match=r"layers \[7, 8"):
        interp.plan_edits(model, interp.SinkCalibration("act-llama-2-7b-chat"))


def test_heads_auto_chosen_on_held_out_questions_recorded_and_reused(tiny_models, tmp_path, monkeypatch):
    """A harness run with heads=auto answers exactly as a run with the heads it chose given as a
    file; its held-out questions are none of the run's; a resume and a rescore reuse the recorded
    heads (selecting again would fail here)."""
    from interp.accuracy import selected
    from interp.accuracy.harness import evaluate, rescore_folder
    from interp.accuracy.methods import parse_method
    from interp.accuracy.structured import held_out_items
    from interp.analysis import selection

    _, model = tiny_models(4)
    items = held_out_items(3)
    held = selected.held_out_questions("structured", None, items)
    asked = {(item.question, item.options) for item in items}
    assert not asked & {(item.question, item.options) for item in held.questions}
    spec = "act:heads=auto,select=4,threshold=0.05"
    auto = evaluate(model, items, tmp_path / "auto", methods=[parse_method(spec)], max_new_tokens=6, progress=False,
                    held_out=held)
    name = "cot+act(heads=auto,select=4,threshold=0.05)"
    settings = json.loads((tmp_path / "auto" / f"{name}.settings.json").read_text())["method"]
    chosen = settings["selection"]["heads"]
    assert chosen and settings["selection"]["held_out"].startswith("structured questions of seed")
    assert len(settings["selection"]["confirmed"]) == 4
    heads_file = tmp_path / "auto" / "cot+act(heads=auto_select=4_threshold=0.05).heads.json"
    given = evaluate(model, items, tmp_path / "file", methods=[parse_method(f"act:heads={heads_file},threshold=0.05")],
                     max_new_tokens=6, progress=False)
    by_file = {a.id: a for a in given.runs[f"cot+act(heads={heads_file.stem},threshold=0.05)"]}
    base = {a.id: a.forced_probability for a in auto.runs["cot"]}
    assert max(abs(a.forced_probability - base[a.id]) for a in auto.runs[name]) > 1e-4  # the heads' edit acts
    for answer in auto.runs[name]:
        assert answer.response == by_file[answer.id].response
        assert answer.forced_probability == pytest.approx(by_file[answer.id].forced_probability, abs=1e-6)

    def no_selection(*args, **kwargs):
        raise AssertionError("heads selected again")

    monkeypatch.setattr(selection, "select_heads", no_selection)
    again = evaluate(model, items, tmp_path / "auto", methods=[parse_method(spec)], max_new_tokens=6, progress=False,
                     held_out=held)
    assert [a.response for a in again.runs[name]] == [a.response for a in auto.runs[name]]
    rescored = rescore_folder(tmp_path / "auto", model)
    assert [a.forced_probability for a in rescored.runs[name]] == pytest.approx(
        [a.forced_probability for a in auto.runs[name]], abs=1e-6)


def test_heads_auto_refusals(tiny_models, tmp_path):
    from interp.accuracy.harness import evaluate
    from interp.accuracy.methods import parse_method
    from interp.accuracy.selected import held_out_questions
    from interp.accuracy.structured import held_out_items
    from interp.validation import UsageError

    _, model = tiny_models(4)
    items = held_out_items(1)
    auto = [parse_method("pasta:heads=auto")]
    with pytest.raises(UsageError, match="heads=auto are chosen on held-out questions of the benchmark, and none"):
        evaluate(model, items, tmp_path / "a", methods=auto, scoring="cloze", progress=False)
    piqa = tmp_path / "piqa"  # a benchmark the run asks whole leaves nothing to choose on
    piqa.mkdir()
    rows = [{"goal": f"Goal {i}?", "sol1": "one way", "sol2": "another way"} for i in range(3)]
    (piqa / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (piqa / "valid-labels.lst").write_text("0\n1\n0\n")
    from interp.accuracy.benchmarks import load_benchmark

    whole = load_benchmark("piqa", str(piqa))
    with pytest.raises(UsageError, match="no held-out questions are left"):
        evaluate(model, whole, tmp_path / "b", methods=auto, scoring="cloze", progress=False,
                 held_out=held_out_questions("piqa", str(piqa), whole))
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())
    assert len(held_out_questions("piqa", str(piqa), whole[:1]).questions) == 2
    with pytest.raises(UsageError, match="select=3 counts the heads heads=auto confirms"):
        parse_method("act:heads=act-llama-2-7b-chat,select=3")
    with pytest.raises(UsageError, match="select=0; give at least 1"):
        parse_method("act:heads=auto,select=0")
    with pytest.raises(UsageError, match="or heads=auto"):
        parse_method("pasta")
