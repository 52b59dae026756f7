"""The structured dataset, the trainer's determinism and resumption, and the shipped models."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re

import pytest
import torch
from safetensors.torch import load_file

import interp
from interp.accuracy.prompts import instruction
from interp.tiny import train as train_module
from interp.accuracy.structured import FAMILIES, drills, held_out_items, take
from interp.tiny.train import TrainConfig, train

SMALL = TrainConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=64, vocab_size=1024, steps=6, batch_size=4,
                    warmup=2, short_steps=3, checkpoint_every=3)


def test_questions_follow_the_papers_cot_layout():
    for q in take("train", 0, 30):
        assert q.prompt.startswith(instruction(len(q.options)))
        assert q.prompt.endswith("\n Analysis:")
        assert re.search(r"\n\nA\. .+\nB\. .+\n", q.prompt)
        assert q.completion.endswith(f"\nResponse: {q.answer}")
        assert q.options[ord(q.answer) - ord("A")] in q.analysis  # the reasoning names the right option


def test_families_option_counts_and_letters_are_balanced():
    counts = collections.Counter((q.family, len(q.options), q.answer) for q in take("train", 0, 720))
    assert {f for f, _, _ in counts} == set(FAMILIES)
    for (family, n, letter), count in counts.items():
        assert count == 720 // len(FAMILIES) // 3 // n, (family, n, letter)


def test_held_out_split_never_overlaps_training():
    train_texts = {(q.question, q.options) for q in take("train", 0, 3000)}
    held = take("held_out", 0, 300)
    assert all(q.held_out for q in held) and not any(q.held_out for q in take("train", 0, 300))
    assert not train_texts & {(q.question, q.options) for q in held}
    assert len({i.id for i in held_out_items(10)}) == 20


def test_drills_ask_keys_of_their_own_table():
    for drill in itertools.islice(drills(0), 50):
        pairs = re.findall(r"(\w+) (\w+)[,.]", drill.table)
        assert 2 <= len(pairs) <= 6 and set(drill.asked) <= set(pairs)


def test_the_tiny_tokenizer_keeps_every_table_word_whole(tmp_path):
    tokenizer = train_module._tokenizer(SMALL, tmp_path)
    for text, pieces in [(" m 51, z 44.", ["▁m", "▁51", ",", "▁z", "▁44", "."]),
                         (" Who owns the hat? hat Bob.", ["▁Who", "▁owns", "▁the", "▁hat", "?", "▁hat", "▁Bob", "."])]:
        assert tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False).input_ids) == pieces
    with pytest.raises(ValueError, match="raise vocab_size"):
        train_module._tokenizer(dataclasses.replace(SMALL, vocab_size=400), tmp_path / "small")


def test_training_is_deterministic_and_resumes_exactly(tmp_path, monkeypatch):
    first = train(SMALL, tmp_path / "a", progress=False)
    second = train(SMALL, tmp_path / "b", progress=False)
    weights = load_file(first / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in load_file(second / "model.safetensors").items())

    real = train_module._batches

    def killed_at_step_4(tokenizer, config, step):
        if step == 4:
            raise KeyboardInterrupt
        return real(tokenizer, config, step)

    monkeypatch.setattr(train_module, "_batches", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(SMALL, tmp_path / "c", progress=False)
    monkeypatch.setattr(train_module, "_batches", real)
    resumed = train(SMALL, tmp_path / "c", progress=False)
    assert all(torch.equal(weights[k], v) for k, v in load_file(resumed / "model.safetensors").items())
    train(dataclasses.replace(SMALL, threads=2), tmp_path / "c", progress=False)  # more threads: same run
    with pytest.raises(ValueError, match="different configuration"):
        train(dataclasses.replace(SMALL, lr=1e-3), tmp_path / "c", progress=False)


def test_a_trained_model_loads_like_any_llama_directory(tmp_path):
    folder = train(SMALL, tmp_path / "m", progress=False)
    model = interp.load_model(folder)
    assert model.cfg.n_layers == 2 and model.tokenizer("Let x = 5.").input_ids[0] == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cot-tiny", "cot-tiny-dropout"])
def test_shipped_models_beat_chance_on_held_out_questions_and_record_how_they_were_made(name):
    import json

    from interp.accuracy.extraction import extract_strict
    from interp.accuracy.prompts import format_prompt
    from interp.tiny.default import load_shipped, shipped

    record = json.loads((shipped(name) / "training.json").read_text())
    assert record["command"].startswith("python -m interp.tiny.build") and "seed" in record["config"]
    assert {"stem", "social"} <= set(record["held_out_accuracy"]["strict"])
    model = load_shipped(name)
    items = held_out_items(12)
    texts = interp.generate(model, [format_prompt(i.question, i.options) for i in items], max_new_tokens=64)
    for family in FAMILIES:
        mine = [(item, text) for item, text in zip(items, texts) if item.category == family]
        correct = sum(extract_strict(text, item.options) == item.answer for item, text in mine) / len(mine)
        chance = sum(1 / len(item.options) for item, _ in mine) / len(mine)
        assert correct >= chance + 0.4, (family, correct, chance, mine[0][1])


def test_held_out_tables_can_be_longer_than_the_training_tables():
    for item in held_out_items(6, pairs=(8, 10)):
        table = item.question.split(": ", 1)[1].split(".")[0]
        assert 8 <= len(table.split(", ")) <= 10, item.question  # pairs counted in the text itself
    with pytest.raises(ValueError, match="give 2 <= fewest <= most <= 10"):
        held_out_items(2, pairs=(8, 11))  # the social family owns 10 things
