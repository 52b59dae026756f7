"""Fine-tuning on a tiny random LLaMA made here: the loss falls, only responses are trained on,
resume is bit-identical, the written directory loads with its weights, attention dropout is on
only in training; and the study of what fine-tuning did to attention."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import interp
from interp.analysis.anchors import non_semantic, non_semantic_share
from interp.train.config import FinetuneConfig
from interp.train.finetune import Row, encode, finetune, pair, read_rows, set_attention_dropout
from interp.train.shared import collate
from interp.model.load import load_hf
from interp.studies.base import Example
from interp.studies.finetuning import finetuning_study
from interp.train.finetune import ADAPTER_FOLDER
from interp.tiny import random_llama

ROWS = [{"prompt": f"Question: {a} plus {b}?\nAnalysis:", "response": f" {a} and {b} make {a + b}.\nResponse: {a + b}"}
        for a, b in [(1, 2), (3, 4), (2, 2), (5, 1), (4, 4), (3, 3)]]


@pytest.fixture(scope="module")
def base(tmp_path_factory, sp_model):
    folder = tmp_path_factory.mktemp("base")
    random_llama(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, vocab_size=400, seed=3).save_pretrained(folder)
    shutil.copyfile(sp_model, folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def config(base, rows, **changes):
    settings = dict(model=str(base), data=str(rows), steps=12, batch_size=3, lr=1e-2, warmup=1, checkpoint_every=4)
    return FinetuneConfig(**{**settings, **changes})


def mean_loss(folder, rows_file):
    """Mean response loss of a model directory on the rows, computed here with a plain forward."""
    model, tokenizer = load_hf(folder)
    batch = collate([encode(tokenizer, r, 512) for r in read_rows(rows_file)], tokenizer.pad_token_id)
    with torch.no_grad():
        return model(input_ids=batch[0], attention_mask=batch[1], labels=batch[2]).loss.item()


@pytest.mark.parametrize("kind", [{"lora_rank": 4}, {"lora_rank": None}])
def test_a_few_lora_or_full_steps_reduce_the_loss_on_the_training_rows(base, rows, tmp_path, kind):
    out = finetune(config(base, rows, **kind), tmp_path / "tuned", progress=False)
    before, after = mean_loss(base, rows), mean_loss(out, rows)
    assert after < before - 0.25, (before, after)
    record = json.loads((out / "training.json").read_text())
    assert len(record["loss_per_step"]) == 12 and record["settings"]["lora_rank"] == kind["lora_rank"]


def test_only_the_response_is_trained_on(base):
    model, tokenizer = load_hf(base)
    row = Row("Question: 1 plus 2?\nAnalysis:", " 1 and 2 make 3.\nResponse: 3", "a row")
    ids, labels = encode(tokenizer, row, 512)
    prompt = tokenizer(row.prompt).input_ids
    assert ids[: len(prompt)] == prompt and labels == [-100] * len(prompt) + ids[len(prompt):]
    assert ids[-1] == tokenizer.eos_token_id
    # The model's loss equals a cross-entropy over the response tokens alone, computed by hand.
    batch = collate([(ids, labels)], tokenizer.pad_token_id)
    with torch.no_grad():
        loss = model(input_ids=batch[0], labels=batch[2]).loss
        logits = model(input_ids=batch[0]).logits[0]
    picks = [-torch.log_softmax(logits[t - 1], -1)[ids[t]] for t in range(len(prompt), len(ids))]
    assert loss.item() == pytest.approx(torch.stack(picks).mean().item(), abs=1e-5)


@pytest.mark.parametrize("kind", [{"lora_rank": 4}, {"lora_rank": None}])
def test_a_killed_run_resumes_to_bit_identical_weights(base, rows, tmp_path, kind):
    settings = config(base, rows, attention_dropout=0.3, **kind)  # dropout: the random state must resume too
    whole = finetune(settings, tmp_path / "whole", progress=False)
    finetune(settings, tmp_path / "killed", progress=False, stop_after=5)  # dies after step 5 (checkpoint at 4 and 5)
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    resumed = finetune(settings, tmp_path / "killed", progress=False)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [json.loads((p / "training.json").read_text())["loss_per_step"] for p in (whole, resumed)]
    assert losses[0] == losses[1]


def test_a_resume_with_other_settings_is_refused(base, rows, tmp_path):
    finetune(config(base, rows), tmp_path, progress=False, stop_after=2)
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        finetune(config(base, rows, lr=1e-3), tmp_path, progress=False)


def test_the_written_directory_loads_with_the_fine_tuned_weights(base, rows, tmp_path):
    from peft import LoraConfig, get_peft_model

    settings = config(base, rows, lora_rank=4)
    out = finetune(settings, tmp_path, progress=False)
    # The fine-tuned model rebuilt here from the checkpoint's LoRA weights, merged by peft.
    model, tokenizer = load_hf(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=settings.lora_alpha, lora_dropout=0.0,
                                                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                                  "up_proj", "down_proj"]))
    state = torch.load(out / "checkpoint" / "state.pt", weights_only=False)
    peft_model.load_state_dict(state["trainable"], strict=False)
    merged = peft_model.merge_and_unload().eval()
    ids = torch.tensor([tokenizer(ROWS[0]["prompt"] + ROWS[0]["response"]).input_ids])
    hooked = interp.load_model(out)
    with torch.no_grad():
        expected = merged(input_ids=ids).logits
        assert (hooked(ids) - expected).abs().max() < 1e-4
        assert (expected - load_hf(base)[0](input_ids=ids).logits).abs().max() > 1e-2  # fine-tuning changed them
        # The adapter alone (what the package ships), merged into its base at load time.
        adapter = out / ADAPTER_FOLDER
        assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base.resolve())
        assert (interp.load_model(adapter)(ids) - expected).abs().max() < 1e-4


def test_attention_dropout_is_on_in_training_only(base):
    model, tokenizer = load_hf(base)
    set_attention_dropout(model, 0.5)
    ids = torch.tensor([tokenizer(ROWS[0]["prompt"]).input_ids])
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)
        model.train()
        assert not torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)


def test_rows_past_the_context_are_refused_by_name(base, tmp_path):
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"prompt": "x " * 1200, "response": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"long.jsonl:2 has \d+ tokens, more than the model's context of 1024"):
        finetune(config(base, long), tmp_path / "out", progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "only a prompt"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing fields \['response'\]"):
        read_rows(bad)


def test_pair_trains_both_variants_from_the_same_rows(base, rows, tmp_path):
    without, with_ = pair(config(base, rows, steps=3, attention_dropout=0.2), tmp_path, progress=False)
    records = [json.loads((p / "training.json").read_text())["settings"] for p in (without, with_)]
    assert [r["attention_dropout"] for r in records] == [0.0, 0.2]
    assert {k: v for k, v in records[0].items() if k != "attention_dropout"} == \
        {k: v for k, v in records[1].items() if k != "attention_dropout"}


def test_non_semantic_share_against_a_hand_count():
    tokens = ["<s>", "The", " cat", ".", "\n", "sat"]
    assert non_semantic(tokens, ["<s>", "</s>"]) == [True, False, False, True, True, False]
    # Special tokens count by the tokenizer's list, whatever they look like.
    assert non_semantic(["<|im_start|>", "user", "<|im_end|>"], ["<|im_start|>", "<|im_end|>"]) == [True, False, True]
    assert non_semantic(["<|im_start|>"], ["<s>"]) == [False]
    pattern = torch.zeros(1, 1, 6, 6)
    pattern[0, 0, 4] = torch.tensor([0.5, 0.1, 0.1, 0.2, 0.1, 0.0])  # query 4: 0.5 + 0.2 + 0.1 non-semantic
    pattern[0, 0, 5] = torch.tensor([0.2, 0.2, 0.2, 0.0, 0.0, 0.4])  # query 5: 0.2
    assert non_semantic_share(pattern, tokens, 4, ["<s>"]).tolist() == pytest.approx([(0.8 + 0.2) / 2])


@pytest.mark.slow
def test_the_finetuning_study_compares_base_and_both_tuned_models(base, rows, tmp_path):
    pair(config(base, rows, steps=6), tmp_path, progress=False)
    models = {name: interp.load_model(p) for name, p in
              [("base", base), ("tuned", tmp_path / "without-dropout"), ("tuned with dropout", tmp_path / "with-dropout")]}
    example = Example.from_text(models["base"], ROWS[0]["prompt"], ROWS[0]["response"])
    page = finetuning_study(models.pop("base"), models, example)
    titles = [s.title for s in page.sections]
    assert "Difference: tuned minus base" in titles and "Anchors found in each model" in titles
    assert any(t.startswith("Dropout comparison") for t in titles)
    anchors = next(s for s in page.sections if s.title == "Anchors found in each model").tables[0][1]
    assert [row[0] for row in anchors] == ["base", "tuned", "tuned with dropout"]


class _Payload:
    """Unpickling this runs ``marker.write_text``: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).write_text, (self.marker, "ran"))


def test_a_checkpoint_holding_code_is_refused_without_running_it(base, rows, tmp_path):
    settings = config(base, rows)
    finetune(settings, tmp_path, progress=False, stop_after=2)
    marker = tmp_path / "marker"
    state = torch.load(tmp_path / "checkpoint" / "state.pt")
    state["losses"] = _Payload(marker)
    torch.save(state, tmp_path / "checkpoint" / "state.pt")
    with pytest.raises(ValueError, match=r"state\.pt holds objects other than tensors.*would run code"):
        finetune(settings, tmp_path, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize("kind", [{"lora_rank": 4}, {"lora_rank": None}])
def test_rerunning_a_finished_or_half_moved_run_finishes_it(base, rows, tmp_path, kind):
    settings = config(base, rows, steps=4, **kind)
    out = finetune(settings, tmp_path, progress=False)
    expected = load_file(out / "model.safetensors")
    finetune(settings, tmp_path, progress=False)  # the identical command again: nothing to do but succeed
    (out / "config.json").unlink()  # a kill after the weights were moved in and before config.json
    (out / "training.json").unlink()
    finetune(settings, tmp_path, progress=False)
    again = load_file(out / "model.safetensors")
    assert all(torch.equal(expected[k], again[k]) for k in expected)
    assert (out / "config.json").is_file() and (out / "training.json").is_file() and not (out / "writing").exists()


@pytest.mark.slow
def test_the_held_out_accuracy_record_counts_greedy_answers_naming_the_right_letter():
    """What training.json records, against a count made here: plain HF greedy decoding of each
    held-out question, the letter after the last ``Response:`` read by hand. 24 per family: the
    shipped model misses the 24th social question, so the count is not all right."""
    import re

    from interp.accuracy.structured import FAMILIES, take
    from interp.tiny.default import shipped
    from interp.train.finetune import held_out_accuracy

    folder, n = shipped(), 24
    record = held_out_accuracy(folder, n)
    model, tokenizer = load_hf(folder)
    right = {}
    for family in FAMILIES:
        for q in take("held_out", 0, n, (family,)):
            ids = tokenizer(q.prompt, return_tensors="pt").input_ids
            out = model.generate(ids, max_new_tokens=96, do_sample=False, pad_token_id=tokenizer.eos_token_id)
            letters = re.findall(r"Response:\s*([A-D])\b", tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
            right.setdefault(family, []).append(bool(letters) and letters[-1] == q.answer)
    assert sum(right["social"]) < n  # a miss to count
    for family, marks in right.items():
        assert record[family]["n"] == n and record[family]["accuracy"] == pytest.approx(sum(marks) / n)
    assert record["all"]["accuracy"] == pytest.approx(sum(map(sum, right.values())) / (2 * n))


def test_without_the_instruction_the_harness_asks_the_question_alone(tmp_path):
    """``evaluate(..., instruction=False)``, as a model fine-tuned without the instruction is
    asked: each response equals plain HF greedy decoding of the question, options and cue alone."""
    from interp.accuracy.harness import evaluate
    from interp.accuracy.structured import held_out_items, take
    from interp.tiny.default import load_shipped, shipped

    answers = evaluate(load_shipped(), held_out_items(2), tmp_path, methods=(), max_new_tokens=48,
                       instruction=False, progress=False).runs["cot"]
    model, tokenizer = load_hf(shipped())
    asked = [q for family in ("stem", "social") for q in take("held_out", 0, 2, (family,))]
    for answer, q in zip(answers, asked):
        ids = tokenizer(q.short_prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=48, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        assert answer.prompt_tokens == ids.shape[1]
        assert answer.response.strip() == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
