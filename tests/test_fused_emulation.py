"""The emulation without its pattern: two FlexAttention passes combined by their log-sum-exp
(what the fast path runs on CUDA), against the eager emulation and against attention written out
here (the CPU runs FlexAttention uncompiled, which returns the log-sum-exp too)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention.flex_attention import AuxRequest, flex_attention

import interp
from interp.edits import patterns
from interp.model.fast_path import fused_emulation
from interp.decoding.generation import decoder, generate_ids, stack_left_padded
from tests.reference import EDIT, Edit, reference_greedy


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_two_passes_give_the_scaled_patterns_output_rows_with_an_empty_mask_included():
    torch.manual_seed(0)
    batch, heads, n, d = 2, 3, 9, 8
    query, key, value = (torch.randn(batch, heads, n, d, dtype=torch.float64) for _ in range(3))
    scores = (query @ key.transpose(-1, -2)) / d**0.5
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, -torch.inf)
    mask = (torch.rand(batch, heads, n, n) > 0.6) & causal
    mask[0, 1, 4] = False  # a row with no key in the mask
    mask[1, :, 0] = False
    factor = 1.37
    # Written out: the pattern, its masked entries scaled, times the values.
    pattern = torch.softmax(scores, dim=-1)
    expected = torch.where(mask, pattern * factor, pattern) @ value

    def everywhere(score, b, h, q, k):
        return torch.where(k <= q, score, -torch.inf)

    def inside(score, b, h, q, k):
        return torch.where(mask[b, h, q, k], everywhere(score, b, h, q, k), -torch.inf)

    out, full = flex_attention(query, key, value, score_mod=everywhere, return_aux=AuxRequest(lse=True))
    out_m, masked = flex_attention(query, key, value, score_mod=inside, return_aux=AuxRequest(lse=True))
    got = patterns.scaled_masked_output(out, full.lse, out_m, masked.lse, factor)
    assert not got.isnan().any()
    assert (got - expected).abs().max() < 1e-10
    assert torch.equal(got[0, 1, 4], out[0, 1, 4])  # an empty mask leaves the row as it was


def batch():
    torch.manual_seed(1)
    rows = [torch.randint(3, 400, (n,)).tolist() for n in (20, 14, 17)]
    return stack_left_padded(rows, 0)


@pytest.mark.parametrize("emulation", [interp.TopLayerEmulation(), interp.TopLayerEmulation(alpha=0.6, threshold=0.05)],
                         ids=["paper", "alpha-0.6"])
def test_fused_equals_eager_on_a_model_batched_with_left_padding(tiny_models, emulation):
    _, model = tiny_models(7, "llama")  # grouped-query attention: 4 query heads, 2 key-value heads
    ids, pad = batch()
    mask = (torch.arange(ids.shape[1])[None] >= pad[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    logits = {}
    with torch.no_grad():
        for fused in (False, True):
            with fused_emulation(fused), decoder(model, [emulation], pad) as fast:
                logits[fused] = fast(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        plain = model(ids, attention_mask=mask, position_ids=positions)
    real = mask.bool()
    assert (logits[True] - logits[False])[real].abs().max() < 1e-5
    assert (plain - logits[False])[real].abs().max() > 1e-3  # the emulation matters here


def test_fused_decoding_equals_the_reference_with_the_kv_cache(tiny_models):
    """Greedy tokens over KV-cached steps (one query per step: the layer-0 mask is the new row's)
    against tests/reference.py's emulation, written without interp."""
    ref, model = tiny_models(7, "llama")
    ids, pad = batch()
    for name, value in vars(Edit("emulation", alpha=0.6, threshold=0.05, last_layer=6)).items():
        setattr(EDIT, name, value)
    EDIT.left_pad, EDIT.state = pad.tolist(), {}
    expected = reference_greedy(ref, ids, pad.tolist(), steps=10)
    with fused_emulation(True):
        got = generate_ids(model, ids, max_new_tokens=10, left_pad=pad,
                           interventions=[interp.TopLayerEmulation(alpha=0.6, threshold=0.05)], eos_token_id=-1)
    assert torch.equal(got, expected)


def test_only_the_papers_edit_is_fused(tiny_models, monkeypatch):
    """Renormalised or boost-all emulations, and other interventions, keep the eager pattern."""
    from interp.model import fast_path

    _, model = tiny_models(7, "llama")
    calls = []
    real = fast_path.fused_masked_scale
    monkeypatch.setattr(fast_path, "fused_masked_scale", lambda *a: calls.append(1) or real(*a))
    ids, pad = batch()
    for emulation, fused_layers in [(interp.TopLayerEmulation(), 6), (interp.TopLayerEmulation(renormalise=True), 0),
                                    (interp.TopLayerEmulation(boost_all=True), 0)]:
        calls.clear()
        with fused_emulation(True):
            generate_ids(model, ids, max_new_tokens=1, left_pad=pad, interventions=[emulation], eos_token_id=-1)
        assert len(calls) == fused_layers, emulation
    calls.clear()
    generate_ids(model, ids, max_new_tokens=1, left_pad=pad, interventions=[interp.TopLayerEmulation()], eos_token_id=-1)
    assert not calls  # on the CPU the eager pattern is the default
