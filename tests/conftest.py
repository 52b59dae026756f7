from __future__ import annotations

import random
from pathlib import Path

import pytest

import interp
from interp.tiny import random_decoder, train_sentencepiece
from tests.reference import reference_copy


def pytest_configure(config: pytest.Config) -> None:
    # `make test-fast` runs two pytest-xdist workers on two cores: one torch thread each, or they
    # thrash (5.8 min instead of 1.7 for one process).
    if hasattr(config, "workerinput"):
        import torch

        torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STORIES = SHARED / "models" / "stories260K" / "stories260K.bin"


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    names = ["Ann", "Bob", "Cy", "Dee", "Eve"]
    things = ["red hat", "blue cup", "green box", "big dog", "small cat"]
    return [
        f"Question: {rng.choice(names)} has a {rng.choice(things)}.\nAnalysis: step {i}; {rng.randint(0, 99)} + {rng.randint(0, 99)}.\nResponse: ({'ABCD'[i % 4]})"
        for i in range(n)
    ]


def dies_after(answers: int, stream):
    """``stream`` (the runner's generate_stream) that raises KeyboardInterrupt, as Ctrl-C would,
    once it has yielded ``answers`` answers."""
    def dying(*args, **kwargs):
        for n, answer in enumerate(stream(*args, **kwargs)):
            if n == answers:
                raise KeyboardInterrupt
            yield answer

    return dying


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory) -> Path:
    return train_sentencepiece(corpus(), tmp_path_factory.mktemp("tok") / "tiny.model", vocab_size=400)


@pytest.fixture(scope="session")
def tiny_models(sp_model):
    """(reference HF model, hooked model) pairs of tiny random decoders, keyed by depth and
    architecture (32 layers exercises h = 31; 7 is another depth)."""
    built = {}

    def build(n_layers: int, architecture: str = "llama"):
        key = (n_layers, architecture)
        if key not in built:
            hf = random_decoder(architecture, n_layers=n_layers, d_model=64, n_heads=4, n_kv_heads=2,
                                vocab_size=400, init_std=0.2, seed=n_layers)
            # The reference is copied first: the bridge rewires the model it wraps in place.
            built[key] = (reference_copy(hf), interp.load_model(hf, tokenizer=sp_model))
        return built[key]

    return build


@pytest.fixture(scope="session")
def llama2_random(tmp_path_factory) -> Path:
    """A 4-layer random LLaMA with LLaMA-2's tokenizer (from ../shared), as an HF directory: real
    benchmark text in few tokens, and every option letter its own token."""
    tokenizer_dir = SHARED / "models" / "llama-2-7b-chat-hf-tokenizer"
    if not tokenizer_dir.is_dir():
        pytest.skip(f"LLaMA-2 tokenizer not found at {tokenizer_dir} (needs ../shared beside the project)")
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("llama2-random")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    random_decoder("llama", n_layers=4, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=len(tokenizer),
                   max_positions=2048, init_std=0.2, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def stories():
    if not STORIES.is_file():
        pytest.skip(f"stories260K checkpoint not found at {STORIES} (needs ../shared beside the project)")
    return interp.load_model(STORIES)


@pytest.fixture(autouse=True)
def reference_attention_unedited():
    """The reference attention's edit (tests/reference.py) is a module-level setting: put it back
    to none after every test, so no test's edit reaches another test's reference model."""
    yield
    from dataclasses import fields

    from tests.reference import EDIT, Edit

    for f in fields(Edit):
        setattr(EDIT, f.name, getattr(Edit(), f.name))
