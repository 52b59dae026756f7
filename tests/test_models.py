from __future__ import annotations

import struct

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

import interp
from interp.model.load import ModelLoadError, sentencepiece_tokenizer
from interp.tiny import random_llama
from tests.conftest import STORIES

# Karpathy's documented greedy output of stories260K (llama2.c run.c, temperature 0).
STORIES_CONTINUATION = (
    ", there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball."
)


def llama2c_numpy_logits(path, tokens: list[int]) -> np.ndarray:
    """run.c's forward pass in numpy, read straight from the checkpoint (interleaved RoPE)."""
    raw = path.read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    flat = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    head = dim // n_heads
    at = 0

    def take(*shape):
        nonlocal at
        size = int(np.prod(shape))
        out = flat[at : at + size].reshape(shape)
        at += size
        return out

    emb = take(abs(vocab), dim)
    att_norm, wq, wk, wv, wo = take(n_layers, dim), take(n_layers, dim, dim), take(n_layers, n_kv * head, dim), take(n_layers, n_kv * head, dim), take(n_layers, dim, dim)
    ffn_norm, w1, w2, w3 = take(n_layers, dim), take(n_layers, hidden, dim), take(n_layers, dim, hidden), take(n_layers, hidden, dim)
    final = take(dim)
    cls = emb if vocab > 0 else flat[at + seq_len * head :].reshape(abs(vocab), dim)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * w

    def rope(x, pos):  # x: [heads, head]; rotates pairs (0,1), (2,3), ...
        out = x.copy()
        for i in range(0, head, 2):
            angle = pos / 10000.0 ** (i / head)
            c, s = np.cos(angle), np.sin(angle)
            out[:, i], out[:, i + 1] = x[:, i] * c - x[:, i + 1] * s, x[:, i] * s + x[:, i + 1] * c
        return out

    x = emb[tokens]
    T = len(tokens)
    for layer in range(n_layers):
        xb = rms(x, att_norm[layer])
        q = np.stack([rope((xb[t] @ wq[layer].T).reshape(n_heads, head), t) for t in range(T)])
        k = np.stack([rope((xb[t] @ wk[layer].T).reshape(n_kv, head), t) for t in range(T)])
        v = (xb @ wv[layer].T).reshape(T, n_kv, head)
        out = np.zeros((T, n_heads, head))
        for h in range(n_heads):
            kv = h // (n_heads // n_kv)
            for t in range(T):
                scores = k[: t + 1, kv] @ q[t, h] / np.sqrt(head)
                weights = np.exp(scores - scores.max())
                out[t, h] = (weights / weights.sum()) @ v[: t + 1, kv]
        x = x + out.reshape(T, dim) @ wo[layer].T
        xb = rms(x, ffn_norm[layer])
        gate = xb @ w1[layer].T
        x = x + ((gate / (1 + np.exp(-gate))) * (xb @ w3[layer].T)) @ w2[layer].T
    return rms(x, final) @ cls.T


def test_stories260k_matches_an_independent_llama2c_forward(stories):
    tokens = [1, 403, 407, 261, 378, 13, 260, 306]
    expected = llama2c_numpy_logits(STORIES, tokens)
    got = stories(torch.tensor([tokens]))[0].detach().double().numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_stories260k_greedy_continuation_is_karpathys_fluent_english(stories):
    text = interp.generate(stories, "Once upon a time", max_new_tokens=40)
    assert text.startswith(STORIES_CONTINUATION)


def test_hf_directory_loads_offline_with_equal_logits(tmp_path, sp_model):
    hf = random_llama(n_layers=3, vocab_size=400, seed=3)
    expected = hf(torch.tensor([[1, 5, 9, 42]])).logits
    hf.save_pretrained(tmp_path)
    sentencepiece_tokenizer(sp_model).save_pretrained(tmp_path)
    model = interp.load_model(tmp_path)
    assert torch.allclose(model(torch.tensor([[1, 5, 9, 42]])), expected, atol=1e-5)
    assert model.to_tokens("Ann has a red hat.")[0, 0].item() == 1  # BOS, as LLaMA-2


def test_hf_directory_in_half_precision(tmp_path, sp_model):
    random_llama(n_layers=2, vocab_size=400).save_pretrained(tmp_path)
    model = interp.load_model(tmp_path, tokenizer=sp_model, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert model(torch.tensor([[1, 5]])).dtype == torch.bfloat16


def test_bad_inputs_name_the_problem_and_the_fix(tmp_path, sp_model, monkeypatch):
    with pytest.raises(ModelLoadError, match="does not exist"):
        interp.load_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no config.json"):
        interp.load_model(tmp_path)
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="not a llama2.c checkpoint"):
        interp.load_model(tmp_path / "weights.txt")
    (tmp_path / "bad.bin").write_bytes(struct.pack("<7i", 64, 172, 5, 8, 4, 512, 512) + b"\0" * 40)
    with pytest.raises(ModelLoadError, match="legacy"):
        interp.load_model(tmp_path / "bad.bin", tokenizer=sp_model)
    t5 = tmp_path / "t5"
    T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)).save_pretrained(t5)
    with pytest.raises(ModelLoadError, match="'t5' model, not a decoder-only causal language model"):
        interp.load_model(t5)
    notok = tmp_path / "notok"
    random_llama(n_layers=1, vocab_size=400).save_pretrained(notok)
    with pytest.raises(ModelLoadError, match="pass tokenizer="):
        interp.load_model(notok)
    with pytest.raises(ModelLoadError, match="unsupported dtype"):
        interp.load_model(notok, tokenizer=sp_model, dtype="int8")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="huggingface-cli download"):
        interp.load_model("meta-llama/Llama-2-7b-chat-hf")


def test_a_model_placed_by_a_device_map_decodes_on_the_fast_path(tmp_path, sp_model):
    """A device_map places the model as it loads (here over the CPU and disk, the one split a
    CPU-only machine can make: accelerate then moves each offloaded layer's weights in per call,
    as it moves activations between GPUs). Generation must still take the fast path, with the
    edits inside it, and give transformers' own logits and the hook path's tokens."""
    from interp.decoding.generation import decoder, generate_ids, stack_left_padded

    hf = random_llama(n_layers=4, vocab_size=400, seed=5)
    hf.save_pretrained(tmp_path / "model")
    sentencepiece_tokenizer(sp_model).save_pretrained(tmp_path / "model")
    split = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
             **{f"model.layers.{i}": "disk" if i % 2 else "cpu" for i in range(4)}}
    model = interp.load_model(tmp_path / "model", device_map=split, offload_folder=tmp_path / "offload")
    assert model.original_model.hf_device_map == split
    assert model.plain.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # really offloaded
    # the plain copy moves the same offloaded weights in, through the same hooks (no second copy)
    assert model.plain.model.layers[1]._hf_hook is model.original_model.model.layers[1]._hf_hook
    ids, pad = stack_left_padded([[1, 5, 9, 42, 7, 3], [1, 8, 2]], 0)
    mask = (torch.arange(ids.shape[1])[None] >= pad[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad(), decoder(model, (), pad) as fast:
        assert fast is model.plain, "the fast path was not taken"
        logits = fast(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        expected = hf(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    assert (logits - expected)[mask.bool()].abs().max() < 1e-4
    with torch.no_grad():  # and the bridge, for analysis
        assert torch.allclose(model(ids[:1]), hf(ids[:1]).logits, atol=1e-5)
    emulation = [interp.TopLayerEmulation(alpha=2.0)]  # strong enough to change the tokens
    fast_tokens = generate_ids(model, ids, max_new_tokens=10, left_pad=pad, interventions=emulation, eos_token_id=-1)
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: x)]):  # forces the hook path
        hook_tokens = generate_ids(model, ids, max_new_tokens=10, left_pad=pad, interventions=emulation, eos_token_id=-1)
    plain_tokens = generate_ids(model, ids, max_new_tokens=10, left_pad=pad, eos_token_id=-1)
    assert torch.equal(fast_tokens, hook_tokens) and not torch.equal(fast_tokens, plain_tokens)


def test_placement_is_refused_where_it_cannot_apply(tmp_path, sp_model):
    with pytest.raises(ModelLoadError, match="in-memory model keeps its own placement"):
        interp.load_model(random_llama(n_layers=1, vocab_size=400), tokenizer=sp_model, device_map="auto")
    with pytest.raises(ModelLoadError, match="cannot place the model: .*CUDA"):
        interp.load_model(tmp_path, n_devices=2)
