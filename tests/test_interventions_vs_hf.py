"""The hooked model with each intervention against a plain Hugging Face model whose attention is
written independently in tests/reference.py (no interp code), for every supported architecture."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.edits.plan import plan_edits
from interp.decoding.generation import decoder, generate_ids, stack_left_padded
from tests.reference import EDIT, Edit, reference_greedy

# LLaMA-2 at two depths (32 exercises h = 31); every other architecture at 7 layers.
MODELS = [(32, "llama"), (7, "llama"), (7, "llama3"), (7, "mistral"), (7, "qwen2"), (7, "qwen3"), (7, "gemma2")]


def cases(n_layers: int):
    last = n_layers - 1
    yield "none", (), Edit("none")
    yield "emulation", (interp.TopLayerEmulation(),), Edit("emulation", last_layer=last)
    yield "emulation-alpha", (interp.TopLayerEmulation(alpha=0.6, threshold=0.05),), Edit(
        "emulation", alpha=0.6, threshold=0.05, last_layer=last)
    layers = (4, 6) if n_layers < 9 else (4, 6, 8)
    yield "prompt-removal", (interp.PromptRangeRemoval((1, 9), layers=layers),), Edit(
        "remove", prompt_range=(1, 9), layers=layers)
    yield "anchor-removal", (interp.AnchorAblation((0, 9), anchors=(0, 4, 8)),), Edit(
        "anchors", prompt_range=(0, 9), anchors=(0, 4, 8))
    yield "anchor-keep-only", (interp.AnchorAblation((0, 9), anchors=(0, 4, 8), keep_only=True),), Edit(
        "anchors", prompt_range=(0, 9), anchors=(0, 4, 8), keep_only=True)
    yield "temperature", (interp.AttentionTemperature(0.5),), Edit("temperature", temperature=0.5)
    yield "sink-scaling", (interp.SinkScaling(2.5, heads=(1, 3)),), Edit("sink-scaling", gamma=2.5, heads=(1, 3))
    yield "sink-window", (interp.SinkWindow(sinks=2, window=5),), Edit("sink-window", sinks=2, window=5)
    act = {1: [0, 2], 3: [1]}
    yield "act", (interp.SinkCalibration(act, beta=0.3, threshold=0.08),), Edit(
        "act", beta=0.3, threshold=0.08, by_layer=act)
    pasta = {0: [1], 2: [0, 3], 4: [2]}
    yield "pasta", (interp.AttentionSteering((2, 7), pasta, alpha=0.05, input_length=12),), Edit(
        "pasta", alpha=0.05, span=(2, 7), by_layer=pasta, input_length=12)
    yield "pasta-include", (interp.AttentionSteering((2, 7), pasta, alpha=0.2, mode="include"),), Edit(
        "pasta", alpha=0.2, span=(2, 7), by_layer=pasta, mode="include")


N_CASES = len(list(cases(7)))


def set_edit(edit: Edit, pad: list[int]) -> None:
    for name, value in vars(edit).items():
        setattr(EDIT, name, value)
    EDIT.left_pad = pad
    EDIT.state = {}


# The 32-layer model takes the longest: the full suite runs it, `make test-fast` the 7-layer ones.
@pytest.fixture(scope="module", params=[pytest.param(m, marks=pytest.mark.slow) if m[0] == 32 else m for m in MODELS],
                ids=[f"{arch}-{depth}" for depth, arch in MODELS])
def pair(request, tiny_models):
    n_layers, architecture = request.param
    ref, model = tiny_models(n_layers, architecture)
    return model, ref, n_layers


def batch():
    torch.manual_seed(1)
    rows = [torch.randint(3, 400, (n,)).tolist() for n in (20, 14, 17)]
    return stack_left_padded(rows, 0)


@pytest.mark.parametrize("case", range(N_CASES))
def test_logits_match_reference(pair, case):
    model, ref, n_layers = pair
    name, interventions, edit = list(cases(n_layers))[case]
    ids, pad = batch()
    mask = (torch.arange(ids.shape[1])[None] >= pad[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    set_edit(edit, pad.tolist())
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask, position_ids=positions).logits
        with interp.intervene(model, *interventions, left_pad=pad):
            got = model(ids, attention_mask=mask, position_ids=positions)
        plain = model(ids, attention_mask=mask, position_ids=positions)
    real = mask.bool()
    assert (got - expected)[real].abs().max() < 1e-4, name
    if name != "none":  # the edit must matter, or the comparison proves nothing
        assert (plain - expected)[real].abs().max() > 1e-3, name


@pytest.mark.parametrize("case", range(N_CASES))
def test_greedy_tokens_match_reference_with_kv_cache(pair, case):
    model, ref, n_layers = pair
    name, interventions, edit = list(cases(n_layers))[case]
    ids, pad = batch()
    set_edit(edit, pad.tolist())
    expected = reference_greedy(ref, ids, pad.tolist(), steps=12)
    got = generate_ids(model, ids, max_new_tokens=12, left_pad=pad, interventions=interventions, eos_token_id=-1)
    assert torch.equal(got, expected), name


def test_emulation_uses_the_models_last_layer(tiny_models):
    _, model = tiny_models(7)
    hooks = interp.TopLayerEmulation().hooks(model.cfg.n_layers)
    assert len(hooks) == 7
    assert interp.TopLayerEmulation().scale(6, 7) == pytest.approx(1.0)
    assert interp.TopLayerEmulation().scale(3, 7) == pytest.approx(1.1)


@pytest.mark.parametrize("case", range(N_CASES))
def test_fast_path_equals_hook_path(pair, case):
    """Decoding runs the plain model with the edits inside its attention; the bridge's hook path
    must give the same logits and greedy tokens, batched with left padding. Layers without edits
    run fused attention there, which sums in another order: 1e-5 where every layer is edited,
    1e-4 over 32 fused layers."""
    model, _, n_layers = pair
    name, interventions, _ = list(cases(n_layers))[case]
    ids, pad = batch()
    mask = (torch.arange(ids.shape[1])[None] >= pad[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        with decoder(model, interventions, pad) as fast:
            assert fast is not model.original_model, "the fast path was not taken"
            fast_logits = fast(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        with interp.intervene(model, *interventions, left_pad=pad):
            hook_logits = model(ids, attention_mask=mask, position_ids=positions)
    real = mask.bool()
    every_layer_edited = len(plan_edits(model, *interventions).edited_layers) == n_layers
    assert (fast_logits - hook_logits)[real].abs().max() < (1e-5 if every_layer_edited else 1e-4), name
    fast_tokens = generate_ids(model, ids, max_new_tokens=12, left_pad=pad, interventions=interventions, eos_token_id=-1)
    # A hook of the caller's own on the bridge must fire, so generation takes the hook path.
    seen = []
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: seen.append(1))]):
        hook_tokens = generate_ids(model, ids, max_new_tokens=12, left_pad=pad, interventions=interventions, eos_token_id=-1)
    assert len(seen) == 12 and torch.equal(fast_tokens, hook_tokens), name


def test_variants_in_one_batch_equal_each_variant_on_its_own(tiny_models):
    """intervention_effects runs pattern variants as rows of one batch (PerRow): each row must
    give what that variant gives alone, logits and greedy continuation."""
    import torch.nn.functional as F

    from interp.analysis.effects import dialogue_logprobs, intervention_effects
    from interp.decoding.generation import decode_until_eos

    _, model = tiny_models(7)
    torch.manual_seed(3)
    ids = torch.randint(3, 400, (1, 24))
    stop = 10
    variants = {
        "original": [],
        "emulation": [interp.TopLayerEmulation(alpha=1.0)],
        "removal": [interp.PromptRangeRemoval((0, stop), layers=(1, 3))],
        "anchors": [interp.AnchorAblation((0, stop), (0, 4))],
        "both": [interp.AnchorAblation((0, stop), (2,), keep_only=True), interp.TopLayerEmulation(alpha=0.5)],
    }
    effects = intervention_effects(model, ids, stop, variants, max_new_tokens=6, generate_from=20)
    base = dialogue_logprobs(model, ids, stop)
    for effect, (name, ivs) in zip(effects, variants.items()):
        alone = dialogue_logprobs(model, ids, stop, ivs)
        assert effect.kl == pytest.approx(F.kl_div(alone, base, log_target=True, reduction="batchmean").item(), abs=1e-5)
        assert effect.loss == pytest.approx(F.nll_loss(alone, ids[0, stop:]).item(), abs=1e-5)
        new = generate_ids(model, ids[:, :20], max_new_tokens=6, interventions=ivs)[0]
        assert effect.continuation == decode_until_eos(model, new), name
