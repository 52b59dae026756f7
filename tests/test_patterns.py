"""Pure pattern edits against hand-computed values."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.edits import patterns


def test_emulation_mask_excludes_own_position_also_for_a_cached_single_query():
    full = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.005, 0.795]]]])
    assert patterns.emulation_mask(full, 0.01).int().tolist() == [[[[0, 0, 0], [1, 0, 0], [1, 0, 0]]]]
    last_row = full[:, :, 2:]
    assert patterns.emulation_mask(last_row, 0.01).int().tolist() == [[[[1, 0, 0]]]]


def test_depth_scale_is_one_plus_alpha_at_layer_zero_and_one_at_the_top():
    assert patterns.depth_scale(0, 0.2, 31) == pytest.approx(1.2)
    assert patterns.depth_scale(31, 0.2, 31) == pytest.approx(1.0)
    assert patterns.depth_scale(10, 0.2, 31) == pytest.approx(1 + 0.2 * 21 / 31)


def test_scale_masked_does_not_renormalise():
    pattern = torch.tensor([[[[0.5, 0.5]]]])
    mask = torch.tensor([[[[True, False]]]])
    assert patterns.scale_masked(pattern, mask, 1.5).tolist() == [[[[0.75, 0.5]]]]


def test_remove_keys_with_and_without_renormalising():
    pattern = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]]])
    keys = torch.tensor([[True, False, False]])
    queries = torch.tensor([[False, True, True]])
    kept = patterns.remove_keys(pattern, keys, queries)
    assert torch.equal(kept[0, 0], torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.3, 0.5]]))
    renorm = patterns.remove_keys(pattern, keys, queries, renormalise_rows=True)
    assert torch.allclose(renorm[0, 0], torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.375, 0.625]]))


def test_renormalise_leaves_empty_rows_empty():
    assert patterns.renormalise(torch.zeros(1, 1, 1, 3)).tolist() == [[[[0.0, 0.0, 0.0]]]]


def test_row_relative_positions_follow_left_padding():
    pad = torch.tensor([0, 2])
    got = patterns.positions_in_range(pad, torch.arange(5), 1, 3)
    assert got.int().tolist() == [[0, 1, 1, 0, 0], [0, 0, 0, 1, 1]]
    assert patterns.positions_in_set(pad, torch.arange(5), torch.tensor([0])).int().tolist() == [
        [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]


def test_interventions_describe_themselves():
    record = interp.describe(interp.PromptRangeRemoval((0, 150)))
    assert record == {"intervention": "PromptRangeRemoval", "prompt_range": (0, 150), "layers": (4, 6, 8),
                      "renormalise": False, "queries": "after"}


@pytest.mark.parametrize("intervention, message", [
    (interp.PromptRangeRemoval((0, 5)), "layers \\[8\\] do not exist"),
    (interp.PromptRangeRemoval((5, 5), layers=(1,)), "empty or negative"),
    (interp.AnchorAblation((0, 5), anchors=(7,)), "outside prompt_range"),
    (interp.AnchorAblation((0, 5), anchors=(1,), layers=(9,)), "do not exist"),
])
def test_bad_intervention_arguments(intervention, message):
    with pytest.raises(ValueError, match=message):
        intervention.hooks(n_layers=8)


def test_emulation_last_layer_must_be_positive():
    with pytest.raises(ValueError, match="last_layer must be a positive layer index"):
        interp.TopLayerEmulation(last_layer=0)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_emulation_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match=rf"threshold={threshold} is outside \(0, 1\)"):
        interp.TopLayerEmulation(threshold=threshold)


@pytest.mark.parametrize("alpha, last_layer, n_layers, ok", [
    # h = 10 on 11 layers: the smallest slope (1 - 1/10) = 0.9 at layer 1 needs alpha > -1/0.9 = -1.111...
    (-1.11, None, 11, True), (-1.12, None, 11, False), (5.0, None, 11, True),
    # h = 5 on 11 layers: layer 10 has slope 1 - 10/5 = -1, so alpha < 1; layer 1 has 0.8, so alpha > -1.25
    (0.99, 5, 11, True), (1.0, 5, 11, False), (-1.24, 5, 11, True), (-1.26, 5, 11, False),
])
def test_emulation_factor_must_be_positive_in_every_layer(alpha, last_layer, n_layers, ok):
    method = interp.TopLayerEmulation(alpha=alpha, last_layer=last_layer)
    if ok:
        assert min(method.scale(layer, n_layers) for layer in range(1, n_layers)) > 0
        method.hooks(n_layers)
    else:
        with pytest.raises(ValueError, match=rf"alpha={alpha} makes the factor .* not positive"):
            method.hooks(n_layers)
