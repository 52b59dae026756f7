"""Architectures beyond LLaMA-2: loading from a directory, the studies and the harness on each,
sliding-window generation against transformers' own, and the refusal of bridges whose pattern hook
only observes. (Equivalence of every intervention against an independent attention, per
architecture: tests/test_interventions_vs_hf.py.)"""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import GPTJConfig, GPTJForCausalLM, OPTConfig, OPTForCausalLM

import interp
from interp.edits.sites import PatternEditsIgnored, editable_layers
from interp.accuracy.harness import evaluate
from interp.accuracy.methods import parse_method
from interp.cli import main
from interp.decoding.generation import generate_ids, stack_left_padded
from interp.tiny import random_decoder
from interp.accuracy.structured import held_out_items

CLASSES = {"llama3": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
           "qwen3": "Qwen3ForCausalLM", "gemma2": "Gemma2ForCausalLM"}


def saved(architecture: str, folder, sp_model, n_layers: int = 4):
    random_decoder(architecture, n_layers=n_layers, vocab_size=400, init_std=0.2, seed=2).save_pretrained(folder)
    shutil.copyfile(sp_model, folder / "tokenizer.model")
    return folder


@pytest.mark.parametrize("architecture", CLASSES)
def test_loads_from_a_directory_and_every_layer_takes_pattern_edits(architecture, sp_model, tmp_path):
    model = interp.load_model(saved(architecture, tmp_path, sp_model))
    assert type(model.original_model).__name__ == CLASSES[architecture]
    assert editable_layers(model) == (0, 1, 2, 3)
    # the emulation's h is this model's last layer
    assert interp.TopLayerEmulation().scale(3, model.cfg.n_layers) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["gemma2", "qwen3"])
def test_studies_and_harness_run(architecture, sp_model, tmp_path):
    folder = saved(architecture, tmp_path / "model", sp_model, n_layers=10)
    prompt = "Question: Ann has a red hat.\nBob has a blue cup.\n"
    assert main(["run", "--model", str(folder), "--prompt-range", prompt, "--dialogue", "Analysis: step 1;",
                 "--out", str(tmp_path / "report"), "--max-new-tokens", "4", "--questions", "2", "--cot-tokens", "8"]) == 0
    assert {"ablation.html", "removal.html", "emulation.html", "heads.html"} <= {p.name for p in (tmp_path / "report").iterdir()}
    model = interp.load_model(folder)
    methods = [parse_method(m) for m in ("emulation", "prompt-removal", "anchor-ablation", "keep-anchors")]
    items = held_out_items(1)
    runs = evaluate(model, items, tmp_path / "acc", methods=methods, max_new_tokens=6, batch_size=3, progress=False).runs
    assert len(runs) == 5 and all([r.id for r in records] == [i.id for i in items] for records in runs.values())


@pytest.mark.parametrize("architecture", ["mistral", "gemma2"])
def test_sliding_window_generation_equals_transformers_generate(architecture, sp_model):
    # interp keeps every key in its cache and lets the mask apply the window (8 tokens here);
    # transformers' generate drops keys outside the window. The tokens must agree.
    make = lambda: random_decoder(architecture, n_layers=3, vocab_size=400, init_std=0.2, seed=4)
    plain, model = make(), interp.load_model(make(), tokenizer=sp_model)
    torch.manual_seed(0)
    ids, pad = stack_left_padded([torch.randint(3, 400, (n,)).tolist() for n in (18, 11)], 0)
    mask = (torch.arange(ids.shape[1])[None] >= pad[:, None]).long()
    expected = plain.generate(ids, attention_mask=mask, max_new_tokens=16, do_sample=False, min_new_tokens=16)
    got = generate_ids(model, ids, max_new_tokens=16, left_pad=pad, eos_token_id=-1)
    assert torch.equal(got, expected[:, ids.shape[1]:])


def observe_only_models():
    yield OPTForCausalLM(OPTConfig(vocab_size=400, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                                   num_attention_heads=4, word_embed_proj_dim=32, max_position_embeddings=64))
    yield GPTJForCausalLM(GPTJConfig(vocab_size=400, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64))


@pytest.mark.parametrize("hf", list(observe_only_models()), ids=["opt", "gptj"])
def test_a_bridge_whose_pattern_hook_only_observes_is_refused(hf, sp_model):
    name = type(hf).__name__
    model = interp.load_model(hf.eval(), tokenizer=sp_model)
    ids = torch.tensor([[1, 5, 9, 12]])
    _, cache = model.run_with_cache(ids)  # analysis still works
    assert torch.allclose(cache["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(1, 4, 4), atol=1e-5)
    assert editable_layers(model) == ()
    for intervention in (interp.TopLayerEmulation(), interp.PromptRangeRemoval((0, 2), layers=(1,))):
        with pytest.raises(PatternEditsIgnored, match=f"{name}: .*only observes .* would be ignored"):
            with interp.intervene(model, intervention):
                pass
    with pytest.raises(PatternEditsIgnored, match=name):
        generate_ids(model, ids, max_new_tokens=2, interventions=[interp.TopLayerEmulation()])
