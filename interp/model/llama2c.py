"""Legacy llama2.c checkpoints (version 0, float32: Karpathy's ``run.c`` format) as Hugging Face
``LlamaForCausalLM``: the peer of :mod:`interp.model.gguf` for the other file format a model comes in."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

LLAMA2C_HEADER = struct.Struct("<7i")


class Llama2cError(ValueError):
    """A file that is not a legacy llama2.c checkpoint."""


def llama2c_to_hf(checkpoint: str | Path) -> LlamaForCausalLM:
    """Convert a legacy llama2.c checkpoint into a Hugging Face ``LlamaForCausalLM``.

    llama2.c rotates interleaved pairs (0,1), (2,3), ... of each head; Hugging Face rotates the
    two halves of each head. The query and key rows are permuted so both compute the same thing.
    """
    raw = Path(checkpoint).read_bytes()
    if len(raw) < LLAMA2C_HEADER.size:
        raise Llama2cError(f"{checkpoint} is too short to be a llama2.c checkpoint")
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = LLAMA2C_HEADER.unpack_from(raw)
    shared = vocab > 0
    vocab = abs(vocab)
    if min(dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len) <= 0 or dim % n_heads:
        raise Llama2cError(f"{checkpoint} has no valid llama2.c header (got {dim=}, {n_heads=}, {n_layers=})")
    head = dim // n_heads
    kv_dim = n_kv_heads * head
    sizes = {
        "embed": vocab * dim, "attn_norm": n_layers * dim, "wq": n_layers * dim * dim,
        "wk": n_layers * kv_dim * dim, "wv": n_layers * kv_dim * dim, "wo": n_layers * dim * dim,
        "ffn_norm": n_layers * dim, "w1": n_layers * hidden * dim, "w2": n_layers * dim * hidden,
        "w3": n_layers * hidden * dim, "norm": dim, "freq": seq_len * head,
    }
    expected = sum(sizes.values()) + (0 if shared else vocab * dim)
    floats = np.frombuffer(raw, dtype="<f4", offset=LLAMA2C_HEADER.size)
    if floats.size != expected:
        raise Llama2cError(
            f"{checkpoint}: header says {expected} weights but the file holds {floats.size}; "
            "only the legacy (version 0, float32) llama2.c format is supported"
        )
    chunks, at = {}, 0
    for key, size in sizes.items():
        chunks[key] = torch.from_numpy(floats[at : at + size].copy())
        at += size
    classifier = chunks["embed"] if shared else torch.from_numpy(floats[at:].copy())

    config = LlamaConfig(
        vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=n_kv_heads, max_position_embeddings=seq_len,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=shared,
        bos_token_id=1, eos_token_id=2, attn_implementation="eager",
    )
    model = LlamaForCausalLM(config)

    def per_layer(key: str, rows: int, cols: int) -> torch.Tensor:
        return chunks[key].view(n_layers, rows, cols)

    def halves(w: torch.Tensor, heads: int) -> torch.Tensor:
        return w.view(heads, head // 2, 2, w.shape[-1]).transpose(1, 2).reshape(w.shape)

    state = {
        "model.embed_tokens.weight": chunks["embed"].view(vocab, dim),
        "model.norm.weight": chunks["norm"],
        "lm_head.weight": classifier.view(vocab, dim),
    }
    for i in range(n_layers):
        prefix = f"model.layers.{i}."
        state |= {
            prefix + "input_layernorm.weight": chunks["attn_norm"].view(n_layers, dim)[i],
            prefix + "post_attention_layernorm.weight": chunks["ffn_norm"].view(n_layers, dim)[i],
            prefix + "self_attn.q_proj.weight": halves(per_layer("wq", dim, dim)[i], n_heads),
            prefix + "self_attn.k_proj.weight": halves(per_layer("wk", kv_dim, dim)[i], n_kv_heads),
            prefix + "self_attn.v_proj.weight": per_layer("wv", kv_dim, dim)[i],
            prefix + "self_attn.o_proj.weight": per_layer("wo", dim, dim)[i],
            prefix + "mlp.gate_proj.weight": per_layer("w1", hidden, dim)[i],
            prefix + "mlp.down_proj.weight": per_layer("w2", dim, hidden)[i],
            prefix + "mlp.up_proj.weight": per_layer("w3", hidden, dim)[i],
        }
    model.load_state_dict(state, strict=True)
    return model.eval()
