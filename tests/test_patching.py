"""Activation and attribution patching against the same patches made by hand on a plain Hugging
Face copy of stories260K (forward hooks on its modules; no interp code on that side)."""

from __future__ import annotations

import copy

import pytest
import torch
from scipy.stats import spearmanr

from interp.analysis.patching import activation_patching, attribution_patching, logit_difference

CLEAN = "Lily likes cats.\nTom likes dogs.\nOne day, Lily saw a cat. Lily likes"


@pytest.fixture(scope="module")
def plain():
    from interp.model.llama2c import llama2c_to_hf
    from tests.conftest import STORIES

    return llama2c_to_hf(STORIES).eval()


@pytest.fixture(scope="module")
def pair(stories):
    clean = stories.to_tokens(CLEAN)
    corrupted = clean.clone()
    lily = clean[0, 1].item()  # the first name's token, swapped for another story word everywhere it occurs
    corrupted[clean == lily] = stories.to_tokens("Tom", prepend_bos=False)[0, 0]
    right, wrong = lily, corrupted[0, 1].item()
    return clean, corrupted, right, wrong


def _plain_metric(hf, ids, right, wrong, patch=None):
    """The logit difference at the last position of a plain run, with ``patch`` = (module,
    function of that module's first input) applied as a forward pre-hook."""
    handle = None
    if patch is not None:
        module, change = patch

        def pre(mod, args, kwargs):
            if args:
                return (change(args[0]), *args[1:]), kwargs
            kwargs["hidden_states"] = change(kwargs["hidden_states"])
            return args, kwargs

        handle = module.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with torch.no_grad():
            logits = hf(ids).logits[0, -1].double()
    finally:
        if handle is not None:
            handle.remove()
    return (logits[right] - logits[wrong]).item()


def _inputs(hf, ids, modules):
    """Each module's first input on a plain run of ``ids``."""
    seen = {}
    handles = [m.register_forward_pre_hook(
        lambda mod, args, kwargs, i=i: seen.__setitem__(i, (args[0] if args else kwargs["hidden_states"]).clone()),
        with_kwargs=True) for i, m in enumerate(modules)]
    with torch.no_grad():
        hf(ids)
    for h in handles:
        h.remove()
    return [seen[i] for i in range(len(modules))]


def _head_patches(hf, base, source, right, wrong, weight):
    """Each head's change in the metric when ``base`` runs with ``weight`` of the way from its
    own output to ``source``'s (the input of o_proj, that head's slice, every position)."""
    layers = hf.model.layers
    d_head = hf.config.hidden_size // hf.config.num_attention_heads
    o_projs = [layer.self_attn.o_proj for layer in layers]
    mine, theirs = _inputs(hf, base, o_projs), _inputs(hf, source, o_projs)
    start = _plain_metric(hf, base, right, wrong)
    out = torch.zeros(len(layers), hf.config.num_attention_heads, dtype=torch.float64)
    for layer in range(len(layers)):
        for head in range(hf.config.num_attention_heads):
            cut = slice(head * d_head, (head + 1) * d_head)

            def change(x, layer=layer, cut=cut):
                x = x.clone()
                x[..., cut] = mine[layer][..., cut] + weight * (theirs[layer][..., cut] - mine[layer][..., cut])
                return x

            out[layer, head] = _plain_metric(hf, base, right, wrong, (o_projs[layer], change)) - start
    return out


def test_exact_head_patching_equals_patching_the_plain_model_by_hand(stories, plain, pair):
    clean, corrupted, right, wrong = pair
    metric = logit_difference(right, wrong)
    for base, source in [(corrupted, clean), (clean, corrupted)]:  # denoising and noising
        got = activation_patching(stories, base, source, metric, batch_size=7)
        expected = _head_patches(plain, base, source, right, wrong, 1.0)
        assert (got.double() - expected).abs().max() < 1e-4
    assert expected.abs().max() > 0.1  # the patches do move the metric


def test_attribution_is_the_first_order_effect_and_ranks_heads_as_exact_patching_does(stories, plain, pair):
    clean, corrupted, right, wrong = pair
    estimate = attribution_patching(stories, corrupted, clean, logit_difference(right, wrong))
    assert estimate.shape == (5, 8)
    # First order: the derivative along the straight line to the clean output, by central finite
    # differences in float64 (steps much below 1e-2 meet the rounding of the parts still in float32).
    step, wide = 1e-2, copy.deepcopy(plain).double()
    slope = (_head_patches(wide, corrupted, clean, right, wrong, step)
             - _head_patches(wide, corrupted, clean, right, wrong, -step)) / (2 * step)
    assert torch.allclose(estimate.double(), slope, atol=2e-3, rtol=2e-2)
    exact = _head_patches(plain, corrupted, clean, right, wrong, 1.0).flatten()
    assert spearmanr(exact, estimate.flatten()).statistic > 0.6
    top = set(exact.abs().argsort(descending=True)[:5].tolist())
    assert len(top & set(estimate.flatten().abs().argsort(descending=True)[:10].tolist())) >= 4


def test_residual_stream_patching_by_position(stories, plain, pair):
    clean, corrupted, right, wrong = pair
    metric = logit_difference(right, wrong)
    exact = activation_patching(stories, corrupted, clean, metric, site="resid", batch_size=32)
    estimate = attribution_patching(stories, corrupted, clean, metric, site="resid")
    assert exact.shape == estimate.shape == (5, clean.shape[1])
    layers = plain.model.layers
    theirs = _inputs(plain, clean, list(layers))
    start = _plain_metric(plain, corrupted, right, wrong)
    changed = (clean != corrupted)[0].nonzero()[:, 0].tolist()
    for layer in (0, 2, 4):
        for pos in [changed[0], clean.shape[1] - 1, 3]:
            def change(x, layer=layer, pos=pos):
                x = x.clone()
                x[:, pos] = theirs[layer][:, pos]
                return x

            expected = _plain_metric(plain, corrupted, right, wrong, (layers[layer], change)) - start
            assert exact[layer, pos].item() == pytest.approx(expected, abs=1e-4)
    # Layer 0 at a position where the inputs agree: nothing to patch.
    same = next(p for p in range(clean.shape[1]) if p not in changed)
    assert exact[0, same].abs() < 1e-6 and estimate[0, same].abs() < 1e-6
    # Patching the whole clean residual stream entering layer 0 at the changed positions restores it.
    assert exact[0, changed].sum() > 0


def test_patching_refuses_inputs_of_different_lengths(stories, pair):
    clean, _, right, wrong = pair
    with pytest.raises(ValueError, match="same shape"):
        attribution_patching(stories, clean, clean[:, :-1], logit_difference(right, wrong))
    with pytest.raises(ValueError, match="unknown site"):
        activation_patching(stories, clean, clean, logit_difference(right, wrong), site="mlp")
