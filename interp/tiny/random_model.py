"""A seeded, randomly initialised LLaMA of any shape, for tests, benchmarks and demos."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def random_llama(
    *, n_layers: int, d_model: int = 64, n_heads: int = 4, n_kv_heads: int | None = None,
    d_mlp: int | None = None, vocab_size: int = 512, max_positions: int = 1024,
    init_std: float = 0.02, seed: int = 0,
) -> LlamaForCausalLM:
    """A LLaMA with random weights. A larger ``init_std`` gives peakier attention patterns."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=d_model, intermediate_size=d_mlp or 4 * d_model,
        num_hidden_layers=n_layers, num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads or n_heads, max_position_embeddings=max_positions,
        initializer_range=init_std, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False, attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()
