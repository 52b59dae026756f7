from __future__ import annotations

import copy

import pytest
import torch

import interp
from interp.analysis.heads import head_scores, sink_scores
from interp.edits.interventions import HeadAblation


def test_head_ablation_equals_zeroing_that_heads_output_projection(tiny_models):
    ref, model = tiny_models(7)
    ids = torch.randint(3, 400, (1, 16))
    for layer, head in [(0, 0), (3, 2), (6, 3)]:
        hf = copy.deepcopy(ref)
        d_head = hf.config.hidden_size // hf.config.num_attention_heads
        with torch.no_grad():
            hf.model.layers[layer].self_attn.o_proj.weight[:, head * d_head : (head + 1) * d_head] = 0
            expected = hf(ids).logits
            with interp.intervene(model, HeadAblation(((layer, head),))):
                got = model(ids)
        assert (got - expected).abs().max() < 1e-4


def test_sink_scores_are_mean_attention_to_the_sinks():
    patterns = torch.zeros(1, 1, 4, 4)
    patterns[0, 0, :, 0] = torch.tensor([1.0, 0.5, 0.25, 0.0])
    assert sink_scores(patterns, (0,)).item() == (0.5 + 0.25 + 0.0) / 3


def test_head_scores_rank_heads_by_the_loss_a_plain_hf_model_loses_without_them(stories):
    from interp.model.load import llama2c_to_hf
    from tests.conftest import STORIES

    ids = stories.to_tokens("Lily likes cats.\nTom likes dogs.\nOne day, Lily saw a cat. Lily likes cats.")
    scores = head_scores(stories, ids, 10)
    hf = llama2c_to_hf(STORIES)  # an independent copy, never bridged
    d_head = hf.config.hidden_size // hf.config.num_attention_heads

    def loss_without(layer: int | None, head: int | None) -> float:
        model = copy.deepcopy(hf)
        with torch.no_grad():
            if layer is not None:
                model.model.layers[layer].self_attn.o_proj.weight[:, head * d_head : (head + 1) * d_head] = 0
            logits = model(ids).logits[0, 9:-1]
        return torch.nn.functional.cross_entropy(logits, ids[0, 10:]).item()

    base = loss_without(None, None)
    expected = {(layer, head): loss_without(layer, head) - base for layer in range(5) for head in range(8)}
    ranked = [tuple(map(int, row["head"].split("."))) for row in scores.ranked()]
    assert ranked[:3] == sorted(expected, key=expected.get, reverse=True)[:3]
    for row in scores.ranked()[:3]:
        assert row["ablation_loss_change"] == pytest.approx(expected[tuple(map(int, row["head"].split(".")))], abs=1e-4)
    assert scores.previous_token.shape == (5, 8) and 0 <= scores.induction.min() <= scores.induction.max() <= 1
