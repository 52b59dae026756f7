from __future__ import annotations

import copy

import pytest
import torch

import interp
from interp.heads import dialogue_loss, head_scores, sink_scores
from interp.interventions import HeadAblation


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


def test_head_scores_rank_by_ablation_effect(stories):
    ids = stories.to_tokens("Lily likes cats.\nTom likes dogs.\nOne day, Lily saw a cat. Lily likes cats.")
    scores = head_scores(stories, ids, 10)
    ranked = scores.ranked()
    assert ranked[0]["ablation_loss_change"] == scores.ablation.max().item()
    layer, head = map(int, ranked[0]["head"].split("."))
    assert dialogue_loss(stories, ids, 10, [HeadAblation(((layer, head),))]) - dialogue_loss(stories, ids, 10) \
        == pytest.approx(ranked[0]["ablation_loss_change"], abs=1e-6)
    assert scores.previous_token.shape == (5, 8) and 0 <= scores.induction.min() <= scores.induction.max() <= 1
