"""GGUF files (llama.cpp's format) as Hugging Face model directories, converted once and cached.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=name)``, with the ``gguf``
package) and dequantizes its weights to float, but refuses to ``save_pretrained`` the result
("quantized with gguf and is not serializable") although nothing in it is quantized any more.
So the weights are copied into a plain model built from the same config and written with the
tokenizer (and its chat template) into a folder named by the file's content: the second load
of the same file, under any name, reads that folder and converts nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch
from tqdm import tqdm

DEFAULT_CACHE = Path.home() / ".cache" / "interp" / "gguf"
DONE = "converted.json"  # written last: a folder without it is a conversion that was cut short


class GGUFError(ValueError):
    """A GGUF file could not be converted; the message names the fix."""


def content_key(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"hashing {path.name}", leave=False) as bar:
            while block := handle.read(chunk):
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def converted(path: str | Path, cache: str | Path | None = None) -> Path:
    """The Hugging Face directory holding ``path``'s model and tokenizer, converted on first use
    into ``cache`` (default ``~/.cache/interp/gguf``), in a folder named by the file's sha256."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GGUFError(f"{path} does not exist; check the path of the .gguf file")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file (it does not start with the GGUF magic); pass a .gguf file "
                            "written by llama.cpp or the gguf package")
    folder = Path(cache or DEFAULT_CACHE).expanduser() / content_key(path)[:32]
    if (folder / DONE).is_file():
        return folder
    _convert(path, folder)
    return folder


def _convert(path: Path, folder: Path) -> None:
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise GGUFError(f"reading {path.name} needs the gguf package: pip install gguf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Each process writes its own staging folder: two converting the same file at once (two
    # runs started together) must not delete each other's work.
    staging = folder.with_name(f"{folder.name}.writing-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as err:
        raise GGUFError(f"cannot write the converted model under {folder.parent} ({err.strerror}); pass another "
                        "cache folder (cache= in Python, --cache on the command line)") from None
    steps = tqdm(total=3, desc=f"converting {path.name} (once)", unit="step")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        steps.update()
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        steps.update()
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        steps.close()
        text = " ".join(str(err).split())[:300]
        raise GGUFError(f"transformers could not read {path.name} ({type(err).__name__}: {text}); it dequantizes "
                        "the architectures and quantization types listed in its GGUF documentation (F32, F16, BF16, "
                        "Q4_0, Q4_1, Q8_0, K-quants, ...): convert the file with llama.cpp to one of those, or load the "
                        "original Hugging Face directory") from None
    try:
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = torch.float32
        plain = type(loaded)(config)  # the same architecture, not marked as GGUF-quantized: save_pretrained writes it
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / DONE).write_text(f'{{"source": "{path.name}"}}\n')
        steps.update()
    except BaseException:  # Ctrl-C or a full disk: the staging folder (named by this process) is no one's
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        steps.close()
    if (folder / DONE).is_file():  # another process finished first: its folder holds the same
        shutil.rmtree(staging, ignore_errors=True)
        return
    shutil.rmtree(folder, ignore_errors=True)  # a conversion cut short
    try:
        staging.replace(folder)
    except OSError:  # another process put its finished folder there meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / DONE).is_file():
            raise
