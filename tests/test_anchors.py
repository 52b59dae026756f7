from __future__ import annotations

import pytest
import torch

import interp

TEXT = "Lily likes cats.\nTom likes dogs.\nThey play: they run. The end.\nOne day, Lily saw a cat."


def test_received_attention_is_the_mean_over_later_queries_of_the_cached_patterns(stories):
    ids = stories.to_tokens(TEXT)
    anchors = interp.detect_anchors(stories, ids, prompt_range=(0, 20))
    _, cache = stories.run_with_cache(ids)
    for layer in range(stories.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # head query key
        n = pattern.shape[-1]
        expected = [sum(pattern[h, q, k].item() for h in range(pattern.shape[0]) for q in range(20, n))
                    / (pattern.shape[0] * (n - 20)) for k in range(20)]
        assert torch.allclose(anchors.received[layer], torch.tensor(expected), atol=1e-6)


def test_stories260k_anchors_are_bos_newlines_and_periods(stories):
    anchors = interp.detect_anchors(stories, TEXT, prompt_range=(0, 20))
    found = set(anchors.strings(anchors.positions()))
    assert {"<s>", "\n", "."} <= found
    assert anchors.share(anchors.positions()).max() > 0.1


def test_bad_anchor_ranges(stories):
    with pytest.raises(ValueError, match="does not fit"):
        interp.detect_anchors(stories, TEXT, prompt_range=(0, 500))
