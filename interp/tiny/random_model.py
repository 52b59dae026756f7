"""Seeded, randomly initialised decoders of any shape, for tests, benchmarks and demos.

Besides LLaMA-2, each architecture the interventions support, configured so that what sets it
apart is exercised even at toy size: LLaMA-3's rope scaling, Mistral's and Gemma 2's sliding
window (shorter than a test prompt), Qwen2's projection biases, Qwen3's query/key norms, Gemma 2's
soft-capping. All use grouped-query attention when ``n_kv_heads < n_heads``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaForCausalLM, PreTrainedModel

ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama", {}),
    "llama3": ("llama", {"rope_parameters": {
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}),
    "mistral": ("mistral", {"sliding_window": 8}),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", {}),
    "gemma2": ("gemma2", {"sliding_window": 8, "attn_logit_softcapping": 5.0, "final_logit_softcapping": 30.0}),
}


def random_decoder(
    architecture: str = "llama", *, n_layers: int, d_model: int = 64, n_heads: int = 4,
    n_kv_heads: int | None = None, d_mlp: int | None = None, vocab_size: int = 512,
    max_positions: int = 1024, init_std: float = 0.02, seed: int = 0,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
) -> PreTrainedModel:
    """A causal LM of one of :data:`ARCHITECTURES` with random weights, created on ``device`` in
    ``dtype`` (a 7B shape never passes through the CPU). A larger ``init_std`` gives peakier
    attention patterns."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    model_type, extra = ARCHITECTURES[architecture]
    head_dim = d_model // n_heads
    if model_type == "gemma2":  # Gemma 2 scales scores by query_pre_attn_scalar, not head_dim
        extra = {**extra, "query_pre_attn_scalar": head_dim}
    config = AutoConfig.for_model(
        model_type, vocab_size=vocab_size, hidden_size=d_model, intermediate_size=d_mlp or 4 * d_model,
        num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads or n_heads,
        head_dim=head_dim, max_position_embeddings=max_positions, initializer_range=init_std,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, **extra,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=dtype).eval()


def random_llama(**kwargs: Any) -> LlamaForCausalLM:
    """A LLaMA(-2) with random weights; the arguments are :func:`random_decoder`'s."""
    return random_decoder("llama", **kwargs)
