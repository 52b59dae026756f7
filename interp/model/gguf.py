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
import shutil
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from interp.files import FolderInUse, hold

DEFAULT_CACHE = Path.home() / ".cache" / "interp" / "gguf"
DONE = "converted.json"  # written last: a folder without it is a conversion that was cut short
LOCKS = ".locks"  # one lock per entry, held while it is converted


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
    check_declared(path)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(folder.parent, err) from None
    # One conversion per file at a time: a second process waits for the first, then finds it done.
    with hold(folder.parent / LOCKS, name=folder.name, wait=True):
        _remove_stale_staging(folder.parent)
        if not (folder / DONE).is_file():
            try:
                _convert(path, folder, _staging(folder))
            except BaseException:  # Ctrl-C, a full disk, a file transformers chokes on: nothing half-written stays
                shutil.rmtree(_staging(folder), ignore_errors=True)
                raise
    return folder


def _field(reader: Any, name: str) -> Any:
    field = reader.fields.get(name)
    return None if field is None else field.contents()


def check_declared(path: Path) -> None:
    """Compare what the file's metadata declares (layers, width, heads) with the tensors it holds
    and their bytes with the file's size, before transformers reads it: a file that declares more
    than it holds would convert with random layers, or hang building a map for sizes it does not
    have."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)  # reads the header and memory-maps the tensors: nothing is allocated
    except ImportError:
        raise GGUFError(f"reading {path.name} needs the gguf package: pip install gguf") from None
    except Exception as err:  # the reader's own errors name no file
        raise GGUFError(f"{path} is not a readable GGUF file ({type(err).__name__}: {' '.join(str(err).split())[:200]})"
                        "; it is cut short or corrupt: copy or convert it again") from None
    arch = _field(reader, "general.architecture")
    declared = {key: _field(reader, f"{arch}.{key}") for key in
                ("block_count", "embedding_length", "attention.head_count", "attention.head_count_kv")}
    for key, value in declared.items():
        if key != "attention.head_count_kv" and (not isinstance(value, int) or value < 1):
            raise GGUFError(f"{path} declares {arch}.{key} = {value!r}, which no model has; the file's metadata is "
                            "broken: convert the model again")
    layers, width, heads = declared["block_count"], declared["embedding_length"], declared["attention.head_count"]
    kv_heads = declared["attention.head_count_kv"] or heads
    if width % heads or not isinstance(kv_heads, int) or kv_heads < 1 or heads % kv_heads:
        raise GGUFError(f"{path} declares {heads} attention heads ({kv_heads} key-value heads) over a width of "
                        f"{width}, which do not divide; the file's metadata is broken: convert the model again")
    blocks: dict[int, set[str]] = {}
    for tensor in reader.tensors:
        part = tensor.name.split(".")
        if part[0] == "blk" and part[1].isdigit():
            blocks.setdefault(int(part[1]), set()).add(".".join(part[2:]))
    missing = [i for i in range(layers) if i not in blocks]
    if missing or any(i >= layers for i in blocks):
        held = f"layers 0 to {max(blocks)}" if blocks else "no layers"
        raise GGUFError(f"{path} declares {layers} layers and holds tensors for {held} ({len(missing)} missing, e.g. "
                        f"layer {missing[0] if missing else max(blocks)}); the file is incomplete: convert the model "
                        "again")
    short = [i for i in blocks if blocks[i] != blocks[0]]
    if short:
        lacks = sorted(blocks[0] ^ blocks[short[0]])
        raise GGUFError(f"{path}: layer {short[0]} lacks or adds tensors other layers have ({', '.join(lacks[:3])}); "
                        "the file is incomplete: convert the model again")
    embedding = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embedding is None or width not in [int(n) for n in embedding.shape]:
        raise GGUFError(f"{path} holds no token embedding of the declared width {width}; the file is incomplete: "
                        "convert the model again")
    end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    if end > path.stat().st_size:
        raise GGUFError(f"{path} is {path.stat().st_size} bytes and its tensors need {end}; it is cut short: copy "
                        "or convert it again")


def _unwritable(cache: Path, err: OSError) -> GGUFError:
    return GGUFError(f"cannot write the converted model under {cache} ({err.strerror}); pass another cache folder "
                     "(cache= in Python, --cache on the command line)")


def _staging(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.writing")  # the entry's lock is held: no one else writes it


def _remove_stale_staging(cache: Path) -> None:
    """Staging folders that no live process is writing (a conversion killed with -9 leaves its
    own, hundreds of MB): each entry's lock is free once its converting process has ended."""
    for staging in cache.glob("*.writing*"):
        entry = staging.name.split(".writing")[0]
        try:
            with hold(cache / LOCKS, name=entry):
                shutil.rmtree(staging, ignore_errors=True)
        except FolderInUse:
            pass  # being converted now


def _convert(path: Path, folder: Path, staging: Path) -> None:
    """Convert ``path`` into ``staging``, then move it to ``folder`` (its gguf package and its
    declared sizes already checked by :func:`check_declared`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as err:
        raise _unwritable(folder.parent, err) from None
    steps = tqdm(total=3, desc=f"converting {path.name} (once)", unit="step")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        steps.update()
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        steps.update()
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as err:
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
    finally:
        steps.close()
    shutil.rmtree(folder, ignore_errors=True)  # a conversion cut short
    staging.replace(folder)
