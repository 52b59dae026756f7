"""Load a decoder-only model (LLaMA and the others TransformerLens 4 bridges) into a hooked model.

TransformerLens 4 replaced ``HookedTransformer`` with ``TransformerBridge``. We boot the bridge
around the Hugging Face model and enable compatibility mode *without* weight processing: the
hook names are the classic ones (``blocks.{l}.attn.hook_pattern``, ``run_with_hooks``,
``hooks()``) and the logits equal the Hugging Face model's.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import urllib.parse
from importlib.metadata import version
from pathlib import Path
from typing import Any

import huggingface_hub
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.utilities.multi_gpu import resolve_device_map

from interp.files import read_json
from interp.model import catalog, gguf
from interp.model.llama2c import Llama2cError, llama2c_to_hf
from interp.edits.sites import measure_editable_layers
from interp.model.devices import device_problem
from interp.model.fast_path import plain_copy

DTYPES = {name: getattr(torch, name) for name in catalog.DTYPE_NAMES}


class ModelLoadError(ValueError):
    """A model or tokenizer could not be loaded; the message names the fix."""


class InterpModel:
    """What :func:`load_model` returns and every interp function takes: the state a model needs at
    run time, held by the caller rather than in tables keyed by models.

    - ``bridge``: the TransformerLens bridge (hook points, ``run_with_cache``, ``hooks()``);
      attributes and calls fall through to it, so the handle is used as the bridge is
      (``model(tokens)``, ``model.cfg``, ``model.to_tokens``, ``model.tokenizer``);
    - ``plain``: the plain Hugging Face model sharing the bridge's weights (and, for a model
      placed over several devices, its placement), which generation decodes with
      (:mod:`interp.model.fast_path`); ``None`` only for a handle built around a bare bridge,
      where generation takes the hook path;
    - ``editable_layers``: the layers whose pattern edits act, measured on first use and kept.
    """

    def __init__(self, bridge: TransformerBridge, plain: PreTrainedModel | None = None) -> None:
        self.bridge = bridge
        self.plain = plain
        self._editable_layers: tuple[int, ...] | None = None

    @property
    def editable_layers(self) -> tuple[int, ...]:
        if self._editable_layers is None:
            self._editable_layers = measure_editable_layers(self.bridge)
        return self._editable_layers

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.bridge(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # only for what the handle itself does not hold
        return getattr(self.__dict__["bridge"], name)

    def __repr__(self) -> str:
        return f"InterpModel({type(self.bridge.original_model).__name__}, {self.cfg.n_layers} layers, " \
               f"fast path {'on' if self.plain is not None else 'off'})"


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ModelLoadError(f"unsupported dtype {dtype!r}; use one of {', '.join(DTYPES)}")


def sentencepiece_tokenizer(model_file: str | Path) -> PreTrainedTokenizerBase:
    """A LLaMA tokenizer (BOS added, as LLaMA-2 does) from a SentencePiece ``.model`` file."""
    model_file = Path(model_file)
    if not model_file.is_file():
        raise ModelLoadError(f"tokenizer file {model_file} does not exist; pass the path of a SentencePiece .model")
    # transformers 5 builds LLaMA tokenizers from a directory holding ``tokenizer.model``.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(model_file, Path(tmp) / "tokenizer.model")
        return _finish_tokenizer(LlamaTokenizer.from_pretrained(tmp, add_bos_token=True, add_eos_token=False))


def _finish_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    # LLaMA-2 ships no pad token; generation masks padding, so any id will do.
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _tokenizer_for(tokenizer: Any, default: Path | None, what: str) -> PreTrainedTokenizerBase:
    """``tokenizer`` as given (an object, a directory or a .model file), else ``default``."""
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return _finish_tokenizer(tokenizer)
    path = Path(tokenizer) if tokenizer is not None else default
    if path is not None and path.is_dir():
        if (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
            return _finish_tokenizer(AutoTokenizer.from_pretrained(path))
        if (path / "tokenizer.model").is_file():
            return sentencepiece_tokenizer(path / "tokenizer.model")
    elif path is not None:
        return sentencepiece_tokenizer(path)
    raise ModelLoadError(
        f"no tokenizer found for {what}; pass tokenizer= (a SentencePiece .model file, a "
        "tokenizer directory, or a transformers tokenizer)"
    )


CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")  # how transformers names the classes of causal language models


def _check_decoder(config: Any, what: str) -> None:
    kind = getattr(config, "model_type", "unknown")
    # BERT-like encoders are in the causal mapping too (as decoders, when configured so): their
    # saved architectures say what the weights were trained as.
    trained_as = [a for a in getattr(config, "architectures", None) or [] if not a.endswith(CAUSAL_HEADS)]
    if getattr(config, "is_encoder_decoder", False) or type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING or \
            (trained_as and not getattr(config, "is_decoder", False) and len(trained_as) == len(config.architectures)):
        raise ModelLoadError(
            f"{what} is a {kind!r} model, not a decoder-only causal language model"
            f"{f' (its weights are a {trained_as[0]})' if trained_as else ''}: it has no causal self-attention to "
            "study or edit. interp loads models "
            "that transformers' AutoModelForCausalLM loads, such as Llama-2-7b-chat-hf, "
            "Meta-Llama-3-8B, Mistral-7B, Qwen2.5-7B, Qwen3-8B or gemma-2-9b"
        )


def _load_error(path: Path, err: Exception) -> ModelLoadError:
    """What went wrong reading a model directory, in words, with the fix."""
    text = " ".join(str(err).split())
    if "size mismatch" in text or "mismatched_sizes" in text or "shape" in text.lower():
        problem = "its weights' shapes do not match its config.json (weights from another model, or an edited config)"
    elif "no file named" in text.lower() or "does not appear to have a file" in text:
        problem = "it has no weights file (model.safetensors, its shards with their index, or pytorch_model.bin)"
    elif type(err).__name__ == "UnpicklingError" or "weights_only" in text:
        problem = ("its weights are a pickle (pytorch_model.bin) holding more than tensors, which torch refuses to "
                   "load because unpickling it could run code from the file; convert it to model.safetensors where "
                   "it came from, or use the model's safetensors release")
    elif type(err).__name__ == "SafetensorError" or "safetensors" in text.lower() or "header" in text.lower():
        problem = "its weights file is truncated or corrupt (an interrupted download or copy)"
    elif isinstance(err, (json.JSONDecodeError, UnicodeDecodeError)) or "json" in text.lower():
        problem = "its config.json is not valid JSON"
    else:
        problem = f"transformers could not read it ({type(err).__name__}: {text[:200]})"
    return ModelLoadError(f"{path}: {problem}; write the directory again with save_pretrained, or download the "
                          "model again")


def check_complete(info: dict[str, Any], what: Path | str) -> None:
    """Refuse a model whose weights file lacks some of its architecture's parameters (transformers
    would start them at random and say so only in a log line): ``info`` is ``from_pretrained``'s
    loading info."""
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        layers = sorted({int(part) for key in missing for i, part in enumerate(key.split(".")[:-1])
                         if part.isdigit() and key.split(".")[i - 1] == "layers"})
        where = f" (layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))})" if layers else ""
        raise ModelLoadError(f"{what}: its weights lack {len(missing)} of the model's parameters{where}, e.g. "
                             f"{', '.join(missing[:3])}; they would load as random numbers. The file is incomplete "
                             "(cut short, or edited): write the directory again with save_pretrained, or download "
                             "the model again")


def load_model(
    source: str | Path | PreTrainedModel,
    *,
    tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    n_devices: int | None = None,
    device_map: str | dict | None = None,
    offload_folder: str | Path | None = None,
    cache: str | Path | None = None,
) -> InterpModel:
    """A TransformerLens hooked model for a decoder-only language model, in its handle.

    ``source`` is one of: a local Hugging Face directory (``config.json``, safetensors or
    ``.bin`` shards, tokenizer files), a LoRA adapter directory (``adapter_config.json``; its base
    is loaded and the adapter merged into it), a hub name such as ``meta-llama/Llama-2-7b-chat-hf``
    (online, or already in the local cache), a short name of :mod:`interp.model.catalog` (e.g.
    ``smollm2-135m-instruct``), a GGUF file (converted once into ``cache``, default
    ``~/.cache/interp/gguf``: :mod:`interp.model.gguf`), a llama2.c checkpoint (``.bin``; its
    SentencePiece ``.model`` is taken from ``tokenizer=`` or from beside it), or an in-memory Hugging Face
    causal LM (``tokenizer=`` required; the bridge rewires that model in place, so keep a copy
    if you need the original). Any architecture TransformerLens bridges loads; the attention
    interventions refuse those whose bridge only observes the pattern
    (:mod:`interp.edits.sites`). ``n_devices`` (split evenly over that many GPUs) or
    ``device_map`` (accelerate's: ``"auto"``, or module name -> ``"cuda:1"`` / ``"cpu"`` /
    ``"disk"``, disk needing ``offload_folder``) place a model read from a directory or the hub
    as it loads; an in-memory model keeps the placement it has. A placed model decodes on the
    fast path like any other.
    """
    if device is not None and (problem := device_problem(device, cpu="device='cpu'")):
        raise ModelLoadError(f"device={problem}")
    torch_dtype = resolve_dtype(dtype)
    placement = _placement(n_devices, device_map, device, offload_folder)
    if placement and isinstance(source, PreTrainedModel):
        raise ModelLoadError("n_devices / device_map place a model as it loads; an in-memory model keeps its own "
                             "placement: load it with from_pretrained(..., device_map=...) and pass it without them")
    hf, tok = load_hf(source, tokenizer=tokenizer, dtype=torch_dtype, cache=cache, placement=placement)
    return _bridge(hf, tok, torch_dtype, device)


def _placement(n_devices: int | None, device_map: str | dict | None, device: Any,
               offload_folder: str | Path | None) -> dict[str, Any]:
    """``from_pretrained``'s placement arguments (TransformerLens's reading of ``n_devices``:
    accelerate's balanced split with each GPU's free memory); empty for one device."""
    try:
        resolved, max_memory = resolve_device_map(n_devices, device_map, device)
    except ValueError as err:
        raise ModelLoadError(f"cannot place the model: {err}") from None
    if resolved is None:
        return {}
    return {"device_map": resolved, **({"max_memory": max_memory} if max_memory else {}),
            **({"offload_folder": str(offload_folder)} if offload_folder is not None else {})}


def local_source(source: str | Path, cache: str | Path | None = None) -> str | Path:
    """A short name as its file, and a GGUF file as its converted directory; anything else as given."""
    try:
        named = catalog.resolve(str(source))
    except catalog.MissingModelFile as err:
        raise ModelLoadError(str(err)) from None
    source = named or source
    if str(source).lower().endswith(".gguf"):
        try:
            return gguf.converted(source, cache)
        except gguf.GGUFError as err:
            raise ModelLoadError(str(err)) from None
    return source


def load_hf(
    source: str | Path | PreTrainedModel,
    *,
    tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
    dtype: str | torch.dtype | None = None,
    cache: str | Path | None = None,
    placement: dict[str, Any] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The plain Hugging Face model and its tokenizer, from any source :func:`load_model` takes
    (what fine-tuning trains; no hooks, eager attention); ``placement`` (``device_map`` ...) is
    passed to ``from_pretrained``."""
    torch_dtype = resolve_dtype(dtype)
    if isinstance(source, PreTrainedModel):
        _check_decoder(source.config, "the given model")
        return source, _tokenizer_for(tokenizer, None, "the given model")
    source = local_source(source, cache)
    path = Path(source).expanduser()
    if placement and ((path / ADAPTER).is_file() or path.is_file()):
        raise ModelLoadError(f"{path}: n_devices / device_map place a Hugging Face directory or hub model as it "
                             "loads; write this one as a directory first (save_pretrained) and load that")
    if (path / ADAPTER).is_file():
        return merged_adapter(path, tokenizer=tokenizer, dtype=torch_dtype, cache=cache)
    if path.is_file():
        if path.suffix != ".bin":
            raise ModelLoadError(
                f"{path} is a file but not a llama2.c checkpoint (.bin); pass a Hugging Face "
                "model directory, a hub name, or a llama2.c .bin file"
            )
        try:
            converted = llama2c_to_hf(path)
        except Llama2cError as err:
            raise ModelLoadError(str(err)) from None
        return converted.to(torch_dtype), _tokenizer_for(tokenizer, _single_sp_model(path.parent), str(path))
    name, tok = _named_source(source, tokenizer)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, attn_implementation="eager",
                                                           output_loading_info=True, **(placement or {}))
    except (OSError, ValueError, RuntimeError) as err:
        raise _load_error(path if path.is_dir() else Path(name), err) from err
    except Exception as err:  # safetensors' SafetensorError and pickle's UnpicklingError derive from Exception alone
        if type(err).__name__ not in ("SafetensorError", "UnpicklingError"):
            raise
        raise _load_error(path, err) from err
    check_complete(info, path if path.is_dir() else Path(name))
    return model, tok


ADAPTER = "adapter_config.json"


def merged_adapter(folder: Path, *, tokenizer: Any = None, dtype: torch.dtype = torch.float32,
                   cache: str | Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A LoRA adapter folder (peft's ``save_pretrained``) merged into its base model, which its
    ``adapter_config.json`` names (a path, hub name or short name; a relative path counts from
    the folder)."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelLoadError(f"{folder} is a LoRA adapter; loading it needs peft: pip install peft") from None
    base_name = read_json(folder / ADAPTER).get("base_model_name_or_path")
    if not base_name:
        raise ModelLoadError(f"{folder / ADAPTER} names no base model (base_model_name_or_path); write the adapter "
                             "again with peft's save_pretrained from a model loaded by name or path")
    beside = folder / base_name
    if (beside / ADAPTER).is_file() or (Path(base_name).expanduser() / ADAPTER).is_file():
        raise ModelLoadError(f"{folder / ADAPTER} names as its base {base_name}, which is a LoRA adapter itself (or "
                             "this one): name the base model it was trained on in base_model_name_or_path")
    if not any((folder / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelLoadError(f"{folder} has {ADAPTER} but no adapter weights (adapter_model.safetensors); write the "
                             "adapter again with peft's save_pretrained")
    base, base_tokenizer = load_hf(beside if beside.exists() else base_name, dtype=torch.float32, cache=cache)
    has_tokenizer = (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()
    tok = _tokenizer_for(tokenizer, folder, str(folder)) if tokenizer is not None or has_tokenizer else base_tokenizer
    # Merged in float32 and then cast, so a float16 model gets the float32 sum rounded once.
    model = PeftModel.from_pretrained(base, folder).merge_and_unload()
    return model.to(dtype).eval(), tok


def _named_source(source: str | Path, tokenizer: Any) -> tuple[str | None, PreTrainedTokenizerBase | None]:
    """A Hugging Face directory or hub name, checked, with its tokenizer; ``(None, None)`` for a
    llama2.c file."""
    path = Path(source).expanduser()
    if path.is_file():
        return None, None
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path} has no config.json; pass a Hugging Face model directory (as written by "
                "save_pretrained) or a llama2.c .bin file"
            )
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise _load_error(path, err) from err
        _check_decoder(config, str(path))
        return str(path), _tokenizer_for(tokenizer, path, str(path))
    if catalog.looks_like_path(str(source)):
        raise ModelLoadError(f"{path} does not exist; check the path to the model directory or checkpoint")
    name = str(source)
    try:
        try:  # the local cache first: a cached model loads offline, with no request made
            config = AutoConfig.from_pretrained(name, local_files_only=True)
            online = False
        except OSError:
            _check_hub_reachable(name)
            config, online = AutoConfig.from_pretrained(name), True
        tok = _tokenizer_for(tokenizer, None, name) if tokenizer is not None else \
            _finish_tokenizer(AutoTokenizer.from_pretrained(name, local_files_only=not online))
    except OSError as err:
        raise ModelLoadError(
            f"could not load {name!r} from the Hugging Face hub or the local cache ({err.__class__.__name__}). "
            f"Download it once while online (`huggingface-cli download {name}`; gated models need "
            "`huggingface-cli login`) or pass the path of a local model directory"
        ) from err
    _check_decoder(config, name)
    return name, tok


def _check_hub_reachable(name: str, timeout: float = 3.0) -> None:
    """Raise at once when the hub cannot be reached (rather than after the client's retries)."""
    url = urllib.parse.urlparse(huggingface_hub.constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError as err:
        raise ModelLoadError(
            f"{name!r} is not in the local Hugging Face cache, and the hub ({url.hostname}) cannot be reached "
            f"({err.__class__.__name__}). Download it once while online (`huggingface-cli download {name}`; gated "
            "models need `huggingface-cli login`) or pass the path of a local model directory") from None


def _single_sp_model(folder: Path) -> Path | None:
    found = sorted(folder.glob("*.model"))
    return folder / found[0].name if len(found) == 1 else None


def _bridge(hf: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dtype: torch.dtype, device: Any) -> InterpModel:
    if placed(hf):  # accelerate put each module where it runs; moving it would undo that
        device = None
        hf = hf.eval()
    else:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        hf = hf.to(device=device, dtype=dtype).eval()
    hf.config.pad_token_id = tokenizer.pad_token_id
    name = getattr(hf.config, "name_or_path", "") or "llama"
    plain = plain_copy(hf)
    try:
        bridge = TransformerBridge.boot_transformers(name, hf_model=hf, tokenizer=tokenizer, device=device, dtype=dtype)
    except ValueError as err:
        if "supported architecture" not in str(err):
            raise
        raise ModelLoadError(
            f"TransformerLens {version('transformer-lens')} has no bridge for {type(hf).__name__} "
            f"(model_type {hf.config.model_type!r}); use an architecture it bridges, such as LLaMA, "
            "Mistral, Qwen2, Qwen3 or Gemma 2"
        ) from err
    _own_bos_convention(bridge, tokenizer)
    return InterpModel(_compat(bridge), plain)


def placed(hf: PreTrainedModel) -> bool:
    """Was the model loaded with a ``device_map`` (its modules placed, and moved between, by accelerate)?"""
    return bool(getattr(hf, "hf_device_map", None))


def adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Does the tokenizer put BOS in front of text itself (LLaMA-2 does, SmolLM2 does not)?"""
    return tokenizer.bos_token_id is not None and tokenizer("a").input_ids[:1] == [tokenizer.bos_token_id]


def _own_bos_convention(bridge: TransformerBridge, tokenizer: PreTrainedTokenizerBase) -> None:
    # TransformerLens swaps in a copy of the tokenizer that adds BOS and prepends BOS by default,
    # which puts a token in front of every input that a model like SmolLM2 was never trained or
    # fine-tuned with. The model is studied on the inputs its own tokenizer makes.
    # (Assigning bridge.tokenizer would run TransformerLens's wiring, which wraps it again.)
    bridge.__dict__["_tokenizer"] = tokenizer
    bridge.cfg.default_prepend_bos = bridge.cfg.tokenizer_prepends_bos = adds_bos(tokenizer)


def _compat(bridge: TransformerBridge) -> TransformerBridge:
    bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    return bridge.eval()


def describe_model(model: InterpModel) -> dict[str, Any]:
    """What a report records about the model it ran on."""
    cfg = model.cfg
    return json.loads(json.dumps({
        "name": getattr(cfg, "model_name", None), "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "d_model": cfg.d_model, "d_vocab": cfg.d_vocab, "dtype": str(cfg.dtype),
        "device": str(cfg.device), "parameters": sum(p.numel() for p in model.parameters()),
    }, default=str))


