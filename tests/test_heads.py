from __future__ import annotations

import copy

import pytest
import torch
from scipy.stats import spearmanr

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


def _plain_losses(ids, prompt_stop, scale):
    """Dialogue loss of an independent, never-bridged copy of stories260K with head (layer, head)'s
    output multiplied by ``scale`` (its columns of o_proj scaled), for every head, and unscaled."""
    from interp.model.llama2c import llama2c_to_hf
    from tests.conftest import STORIES

    hf = llama2c_to_hf(STORIES)
    d_head = hf.config.hidden_size // hf.config.num_attention_heads

    def loss(layer: int | None, head: int | None) -> float:
        model = copy.deepcopy(hf)
        with torch.no_grad():
            if layer is not None:
                model.model.layers[layer].self_attn.o_proj.weight[:, head * d_head : (head + 1) * d_head] *= scale
            logits = model(ids).logits[0, prompt_stop - 1 : -1]
        return torch.nn.functional.cross_entropy(logits.double(), ids[0, prompt_stop:]).item()

    base = loss(None, None)
    return {(layer, head): loss(layer, head) - base for layer in range(5) for head in range(8)}


TEXT = "Lily likes cats.\nTom likes dogs.\nOne day, Lily saw a cat. Lily likes cats."


def test_attribution_estimate_is_the_first_order_effect_and_ranks_heads_as_ablation_does(stories):
    from interp.analysis.heads import attribution_effects

    ids = stories.to_tokens(TEXT)
    estimate = attribution_effects(stories, ids, 10)
    # First order: the derivative of the loss along z -> (1 - d) z, by finite differences of a plain model.
    delta = 1e-3
    slope = {head: change / delta for head, change in _plain_losses(ids, 10, 1 - delta).items()}
    for (layer, head), expected in slope.items():
        assert estimate[layer, head].item() == pytest.approx(expected, abs=2e-3, rel=2e-2)
    # Against ablating every head (40 of them): the estimate ranks them much as exact ablation does.
    exact = _plain_losses(ids, 10, 0.0)
    heads = sorted(exact)
    correlation = spearmanr([exact[h] for h in heads], [estimate[h].item() for h in heads]).statistic
    assert correlation > 0.6


def test_head_scores_confirm_the_top_estimates_by_ablation_as_a_plain_hf_model_measures_them(stories):
    ids = stories.to_tokens(TEXT)
    scores = head_scores(stories, ids, 10, confirm=5)
    expected = _plain_losses(ids, 10, 0.0)
    confirmed = scores.confirmed
    assert len(confirmed) == 5
    assert set(confirmed) == set(sorted(((l, h) for l in range(5) for h in range(8)),
                                        key=lambda h: scores.estimate[h].item(), reverse=True)[:5])
    for head in confirmed:
        assert scores.exact[head].item() == pytest.approx(expected[head], abs=1e-4)
    ranked = scores.ranked()
    assert [tuple(map(int, row["head"].split("."))) for row in ranked[:5]] == \
        sorted(confirmed, key=expected.get, reverse=True)
    assert -1 <= scores.agreement() <= 1
    assert scores.previous_token.shape == (5, 8) and 0 <= scores.induction.min() <= scores.induction.max() <= 1


def test_attribution_needs_no_weight_to_require_grad(stories):
    """A merged LoRA model comes back with frozen weights: the estimate must not depend on it."""
    from interp.analysis.heads import attribution_effects

    ids = stories.to_tokens(TEXT)
    expected = attribution_effects(stories, ids, 10)
    flags = [p.requires_grad for p in stories.parameters()]
    try:
        for p in stories.parameters():
            p.requires_grad_(False)
        assert torch.allclose(attribution_effects(stories, ids, 10), expected)
    finally:
        for p, flag in zip(stories.parameters(), flags):
            p.requires_grad_(flag)


def test_head_scores_print_short():
    from interp.analysis.heads import HeadScores

    table = torch.zeros(2, 3)
    estimate = torch.tensor([[0.1, 0.5, 0.0], [0.2, 0.0, 0.3]])
    exact = torch.full((2, 3), float("nan"))
    exact[0, 1], exact[1, 2], exact[1, 0] = 0.4, 0.25, 0.1
    scores = HeadScores(table, table, table, table, estimate, exact, "zero")
    assert repr(scores) == ("HeadScores(2 layers x 3 heads, zero ablation, 3 confirmed, top 0.1 (estimate +0.500), "
                            "Spearman 1.00)")
