"""Every plausible mistake on the command line ends the same way: exit code 2, one line that names
the option (or the file) and the fix, no traceback, and no output folder that looks finished.

The cases are data: a new option adds its rows here. ``{...}`` in an argument is filled from the
fixtures below (broken model directories, a file where a folder belongs, bad benchmark files).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from interp.cli import main
from interp.tiny.default import shipped
from tests.conftest import STORIES

# (arguments, text the one-line message must contain). Each names the option, the value or the file.
CASES = [
    # model directories that cannot be loaded
    (["attention", "--model", "{badconfig}"], "--model: {badconfig}: its config.json is not valid JSON"),
    (["attention", "--model", "{truncated}"], "--model: {truncated}: its weights file is truncated or corrupt"),
    (["attention", "--model", "{noweights}"], "--model: {noweights}: it has no weights file"),
    (["attention", "--model", "{adapter_self}"], "names as its base ., which is a LoRA adapter itself (or this one)"),
    (["attention", "--model", "{adapter_empty}"], "has adapter_config.json but no adapter weights"),
    (["attention", "--model", "{adapter_bad}"], "adapter_config.json is not valid JSON"),
    (["attention", "--model", "{pickled}"], "its weights are a pickle (pytorch_model.bin) holding more than tensors"),
    (["attention", "--model", "{missing_layer}"], "--model: {missing_layer}: its weights lack 9 of the model's parameters (layer 9)"),
    (["attention", "--model", "{shapes}"], "--model: {shapes}: its weights' shapes do not match its config.json"),
    (["attention", "--model", "{bert}"], "--model: {bert} is a 'bert' model, not a decoder-only causal language model"),
    (["emulation", "--model", "{bert}"], "not a decoder-only causal language model"),
    (["attention", "--model", "{missing}"], "--model {missing} does not exist"),
    (["attention", "--model", "{stories_bin}", "--tokenizer", "{missing}"], "--tokenizer {missing} does not exist"),
    # output folders
    (["attention", "--out", "{a_file}"], "--out {a_file} is a file"),
    (["attention", "--out", "{under_a_file}"], "--out {under_a_file} cannot be created: {a_file} is a file"),
    (["accuracy", "--benchmark", "structured", "--results", "{a_file}"], "--results {a_file} is a file"),
    (["accuracy", "--benchmark", "structured", "--scoring", "cloze", "--direct", "--max-new-tokens", "8"],
     "--direct, --max-new-tokens apply to generated answers; --scoring cloze generates nothing"),
    (["accuracy", "--benchmark", "structured", "--scoring", "letter", "--no-instruction"],
     "--no-instruction applies to generated answers; --scoring letter generates nothing"),
    (["accuracy", "--benchmark", "structured", "--scoring", "logprob"], "argument --scoring: invalid choice: 'logprob'"),
    (["finetune", "--model", "{tiny_model}", "--out", "{tiny_model}"], "--out {tiny_model} would write over --model"),
    (["finetune", "--model", "{tiny_model}", "--out", "{tiny_model}/tuned"], "would write over --model"),
    (["finetune", "--model", "{tiny_model}", "--out", "{a_file}"], "--out {a_file} is a file"),
    (["reproduce", "--data", "{missing}"], "--data {missing} does not exist"),
    (["reproduce", "--data", "{a_file}"], "--data {a_file}/mmlu does not exist"),
    (["reproduce", "--data", "{empty_dir}", "--benchmarks", "piqa"], "--data {empty_dir}/piqa does not exist"),
    (["reproduce", "--data", "{fresh}", "--limit", "0"], "argument --limit: 0 is not at least 1"),
    (["reproduce", "--data", "{fresh}", "--layout", "raw"], "argument --layout: invalid choice: 'raw'"),
    (["reproduce", "--data", "{fresh}", "--models", "large"], "argument --models: invalid choice: 'large'"),
    (["reproduce", "--data", "{fresh}", "--tuned", "{missing}"], "--tuned {missing} does not exist"),
    # devices and dtypes, with and without --model
    (["attention", "--model", "{tiny_model}", "--device", "tpu"], "argument --device: 'tpu' is not a device"),
    (["attention", "--device", "tpu"], "argument --device: 'tpu' is not a device"),
    (["attention", "--device", "cuda:x"], "argument --device: 'cuda:x' is not a device"),
    (["attention", "--dtype", "float64"], "argument --dtype: invalid choice: 'float64'"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--dtype", "int8"], "argument --dtype: invalid choice"),
    (["attention", "--tokenizer", "{a_file}"], "--tokenizer only apply with --model"),
    (["attention", "--n-devices", "0"], "argument --n-devices: 0 is not at least 1"),
    # counts and lengths
    (["emulation", "--max-new-tokens", "-5"], "argument --max-new-tokens: -5 is not at least 1"),
    (["attention", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 is not at least 1"),
    (["attention", "--max-new-tokens", "ten"], "argument --max-new-tokens: 'ten' is not a whole number"),
    (["ablation", "--model", "{tiny_model}", "--max-new-tokens", "100000"], "continued for --max-new-tokens 100000 from token"),
    (["run", "--questions", "0"], "argument --questions: 0 is not at least 1"),
    (["run", "--cot-tokens", "-1"], "argument --cot-tokens: -1 is not at least 1"),
    (["accuracy", "--benchmark", "structured", "--limit", "0"], "argument --limit: 0 is not at least 1"),
    (["accuracy", "--benchmark", "structured", "--limit", "-1"], "argument --limit: -1 is not at least 1"),
    (["accuracy", "--benchmark", "structured", "--limit", "1000000000"], "--limit 1000000000: the structured benchmark's questions are generated"),
    (["reproduce", "--data", "{fresh}", "--quick", "--examples", "1000000000"], "--examples 1000000000: the attention analyses"),
    (["accuracy", "--benchmark", "structured", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 is not at least 1"),
    (["accuracy", "--benchmark", "structured", "--batch-size", "0"], "argument --batch-size"),
    (["accuracy", "--benchmark", "structured", "--table-pairs", "4", "2"], "--table-pairs 4 2: the fewest comes after the most"),
    (["accuracy", "--benchmark", "structured", "--table-pairs", "2", "99", "--model", "{tiny_model}"], "--table-pairs 2 99: tables of 2 to 99 pairs"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--steps", "0"], "argument --steps: 0 is not at least 1"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--lora", "0"], "argument --lora: 0 is not at least 1"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--lr", "0"], "argument --lr: 0 is not above 0"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--lora", "4", "--full"], "--lora and --full exclude each other"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--lr", "nan"], "argument --lr: 'nan' is not a finite"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--attention-dropout", "1"], "--attention-dropout: 1 is outside [0, 1)"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--data", "{missing}"], "--data {missing} does not exist"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--data", "{bad_rows}"], "rows.jsonl:1: missing fields ['response']"),
    (["finetune", "--model", "{tiny_model}", "--out", "{fresh}", "--data", "{bad_rows}", "--no-instruction"],
     "--no-instruction applies to --data structured only"),
    # anchor ratios
    (["anchors", "--ratio", "0"], "argument --ratio: 0 is not above 0"),
    (["anchors", "--ratio", "-1"], "argument --ratio: -1 is not above 0"),
    (["anchors", "--ratio", "nan"], "argument --ratio: 'nan' is not a finite number"),
    (["ablation", "--ratio", "1e9"], "argument --ratio: 1e+09 is so high that no key can receive that much"),
    (["heads", "--ratio", "inf"], "argument --ratio: 'inf' is not a finite number"),
    # layers and heads against the model (10 layers, 4 heads), before anything is computed
    (["removal", "--model", "{tiny_model}", "--first", "4", "--last", "20"], "--first/--last: layers [20] do not exist in a model with 10 layers"),
    (["removal", "--first", "6", "--last", "4", "--model", "{tiny_model}"], "--first 6 comes after --last 4"),
    (["removal", "--first", "-1"], "argument --first: -1 is negative"),
    (["attention", "--model", "{tiny_model}", "--zoom-layers", "12"], "--zoom-layers: layers [12] do not exist in a model with 10 layers"),
    (["emulation", "--model", "{tiny_model}", "--last-layer", "100"], "--last-layer 100: TopLayerEmulation: last_layer=100 is not a layer of this 10-layer model"),
    (["emulation", "--last-layer", "0"], "argument --last-layer: 0 is not at least 1"),
    (["emulation", "--threshold", "1.5"], "argument --threshold: 1.5 is outside (0, 1)"),
    (["emulation", "--model", "{tiny_model}", "--alpha", "-3"], "--alpha -3.0: TopLayerEmulation: alpha=-3.0 makes the factor"),
    (["heads", "--model", "{tiny_model}", "--show", "0.99"], "--show 0.99: head 99 does not exist; layers have heads 0 to 3"),
    (["heads", "--model", "{tiny_model}", "--show", "99.0"], "--show 99.0: layer 99 does not exist; the model has layers 0 to 9"),
    (["heads", "--model", "{tiny_model}", "--show", "1.9"], "head 9 does not exist"),
    (["heads", "--show", "one"], "argument --show: heads are written LAYER.HEAD"),
    (["heads", "--ablation", "half"], "argument --ablation: invalid choice"),
    (["methods", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 is not at least 1"),
    (["heads", "--for", "zerotuning"], "argument --for: 'zerotuning': heads are selected for act or pasta"),
    (["heads", "--for", "act:gamma=2"], "'gamma=2' is not a parameter of act; it takes beta=..., threshold=..."),
    (["heads", "--for", "act:beta=2"], "SinkCalibration: beta=2.0; give a share in [0, 1]"),
    (["heads", "--for", "pasta:alpha=x"], "'alpha=x' is not a float"),
    (["heads", "--select", "4"], "--select choose how --for selects heads; add --for act or --for pasta"),
    (["heads", "--for", "act", "--select-data", "{missing}"], "--select-data {missing} does not exist"),
    (["heads", "--for", "act", "--select-data", "{empty_dir}"], "--select-data names a benchmark's files: add --select-from"),
    (["heads", "--for", "act", "--select", "999", "--model", "{tiny_model}"], "--select 999: select_heads: k=999; give 1 to 40"),
    (["accuracy", "--benchmark", "structured", "--method", "act:heads=act-llama-2-7b-chat,select=4"],
     "select=4 counts the heads heads=auto confirms"),
    (["accuracy", "--benchmark", "structured", "--method", "pasta:heads=auto,select=0"], "select=0; give at least 1 head"),
    (["accuracy", "--benchmark", "structured", "--method", "pasta"], "or heads=auto (chosen on held-out questions"),
    (["accuracy", "--benchmark", "piqa", "--data", "{piqa_one}", "--method", "act:heads=auto", "--model", "{tiny_model}"],
     "no held-out questions are left to choose heads on"),
    (["accuracy", "--benchmark", "structured", "--method", "act:heads=act-llama-2-7b-chat", "--model", "{tiny_model}"],
     "SinkCalibration: layers [10, 11"),
    # options that need another one, or cannot apply in the chosen mode
    (["finetuning", "--model", "{tiny_model}"], "interp finetuning with --model needs --tuned DIR"),
    (["finetuning", "--tuned", "{missing}"], "--tuned {missing} does not exist"),
    (["dropout", "--compare-model", "{missing}"], "--compare-model {missing} does not exist"),
    (["dropout", "--compare-model", "{bert}", "--model", "{tiny_model}"], "--compare-model: {bert} is a 'bert' model"),
    (["accuracy", "--benchmark", "structured", "--data", "{empty_dir}"], "--data apply to mmlu, piqa and siqa"),
    (["accuracy", "--benchmark", "structured", "--subjects", "anatomy"], "--subjects apply to mmlu, piqa and siqa"),
    (["accuracy", "--benchmark", "piqa", "--data", "{piqa_null}", "--table-pairs", "2", "4"], "--table-pairs applies to --benchmark structured only"),
    (["accuracy", "--benchmark", "piqa", "--data", "{piqa_null}", "--subjects", "x"], "--subjects applies to --benchmark mmlu only"),
    (["accuracy", "--benchmark", "structured", "--rescore", "--limit", "3"], "--rescore re-reads the responses already in --results"),
    (["accuracy", "--benchmark", "structured", "--rescore", "--results", "{missing}"], "--results {missing} does not exist"),
    (["accuracy", "--benchmark", "structured", "--rescore", "--results", "{empty_dir}"], "holds no cot.settings.json"),
    (["accuracy", "--benchmark", "mmlu", "--rescore", "--results", "{structured_results}"],
     "--benchmark mmlu: {structured_results} holds answers to structured (its run.json says so); give --benchmark structured"),
    # benchmark files
    (["accuracy", "--benchmark", "mmlu", "--data", "{empty_dir}", "--model", "{tiny_model}"], "--data {empty_dir}: no <subject>_test.csv files"),
    (["accuracy", "--benchmark", "mmlu", "--data", "{missing}"], "--data {missing} does not exist"),
    (["accuracy", "--benchmark", "piqa", "--data", "{piqa_null}", "--model", "{tiny_model}"], "fields ['sol2'] must be text, got None"),
    (["accuracy", "--benchmark", "mmlu", "--data", "{mmlu_dir}", "--subjects", "astrology", "--model", "{tiny_model}"], "subjects ['astrology'] not in"),
    # method specs
    (["accuracy", "--benchmark", "structured", "--method", "prompt-removal:first=8,last=4"], "--method prompt-removal:first=8,last=4: method prompt-removal: first=8, last=4 is an empty"),
    (["accuracy", "--benchmark", "structured", "--method", "prompt-removal:first=99,last=99", "--model", "{tiny_model}"], "--method prompt-removal(first=99,last=99): PromptRangeRemoval: layers [99] do not exist"),
    (["accuracy", "--benchmark", "structured", "--method", "prompt-removal:step=-2"], "step=-2; give a step of at least 1"),
    (["accuracy", "--benchmark", "structured", "--method", "keep-anchors:ratio=-1"], "--method keep-anchors:ratio=-1: method keep-anchors: ratio: -1 is not above 0"),
    (["accuracy", "--benchmark", "structured", "--method", "anchor-ablation:ratio=nan"], "ratio='nan' is not a finite number"),
    (["accuracy", "--benchmark", "structured", "--method", "emulation:last_layer=100", "--model", "{tiny_model}"], "--method emulation(last_layer=100): TopLayerEmulation: last_layer=100 is not a layer"),
    (["accuracy", "--benchmark", "structured", "--method", "emulation:alpha=x"], "alpha='x' is not a valid float"),
    (["accuracy", "--benchmark", "structured", "--method", "emulation", "emulation", "--model", "{tiny_model}"], "--method: methods ['cot+emulation', 'cot+emulation'] name the same variant twice"),
    # text
    (["anchors", "--prompt-range", "Hi", "--dialogue", "", "--model", "{tiny_model}"], "--prompt-range/--dialogue: both the prompt and the dialogue must be non-empty"),
    (["anchors", "--model", "{tiny_model}", "--prompt-range", "word " * 600, "--dialogue", "end"], "more than the model's context of 512 tokens"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    good = shipped()

    def model_copy(name: str) -> Path:
        folder = root / name
        shutil.copytree(good, folder)
        return folder

    (model_copy("badconfig") / "config.json").write_text("{ not json")
    weights = model_copy("truncated") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    (model_copy("noweights") / "model.safetensors").unlink()
    from safetensors.torch import load_file, save_file

    for name, config in (("adapter_self", {"base_model_name_or_path": "."}),
                         ("adapter_empty", {"base_model_name_or_path": str(good)}), ("adapter_bad", None)):
        (root / name).mkdir()
        (root / name / "adapter_config.json").write_text("{ not json" if config is None else json.dumps(config))
    pickled = model_copy("pickled")
    (pickled / "model.safetensors").unlink()
    torch.save({"weights": Path("a path object: not a tensor")}, pickled / "pytorch_model.bin")
    layer_9 = model_copy("missing_layer") / "model.safetensors"
    save_file({k: v for k, v in load_file(layer_9).items() if ".layers.9." not in k}, layer_9, metadata={"format": "pt"})
    shapes = model_copy("shapes") / "config.json"
    shapes.write_text(json.dumps({**json.loads(shapes.read_text()), "hidden_size": 64, "intermediate_size": 100}))
    from transformers import BertConfig, BertForMaskedLM

    bert = root / "bert"
    BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(bert)
    (root / "a_file").write_text("not a folder")
    (root / "empty").mkdir()
    (root / "structured_results").mkdir()
    (root / "structured_results" / "run.json").write_text(json.dumps({"source": {"benchmark": "structured"}}))
    (root / "rows.jsonl").write_text('{"prompt": 1}\n')
    piqa = root / "piqa"
    piqa.mkdir()
    (piqa / "valid.jsonl").write_text('{"goal": "Open a jar", "sol1": "Twist the lid", "sol2": null}\n')
    (piqa / "valid-labels.lst").write_text("0\n")
    piqa_one = root / "piqa_one"
    piqa_one.mkdir()
    (piqa_one / "valid.jsonl").write_text('{"goal": "Open a jar", "sol1": "Twist the lid", "sol2": "Shout"}\n')
    (piqa_one / "valid-labels.lst").write_text("0\n")
    mmlu = root / "mmlu"
    mmlu.mkdir()
    (mmlu / "anatomy_test.csv").write_text("What is it?,a,b,c,d,A\n")
    return {"badconfig": str(root / "badconfig"), "truncated": str(root / "truncated"),
            "noweights": str(root / "noweights"), "missing_layer": str(root / "missing_layer"),
            **{name: str(root / name) for name in ("adapter_self", "adapter_empty", "adapter_bad", "pickled")}, "shapes": str(root / "shapes"), "bert": str(bert),
            "missing": str(root / "missing"), "a_file": str(root / "a_file"),
            "under_a_file": str(root / "a_file" / "reports"), "tiny_model": str(good), "fresh": str(root / "fresh"),
            "empty_dir": str(root / "empty"), "structured_results": str(root / "structured_results"), "bad_rows": str(root / "rows.jsonl"), "piqa_null": str(piqa), "piqa_one": str(piqa_one),
            "mmlu_dir": str(mmlu), "stories_bin": str(STORIES)}


def invoke(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own refusals
        return int(stop.code)


def looks_finished(folder: Path) -> bool:
    index = folder / "index.html"
    return index.is_file() and "Unfinished report" not in index.read_text()


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv)[:70] for argv, _ in CASES])
def test_a_bad_invocation_exits_2_with_one_line_naming_it(argv, message, places, tmp_path, capsys):
    argv = [a.format(**places) for a in argv]
    message = message.format(**places)
    if "{stories_bin}" in " ".join(argv) and not STORIES.is_file():
        pytest.skip("stories260K not found (needs ../shared beside the project)")
    out = ["--results", str(tmp_path / "results")] if argv[0] == "accuracy" and "--results" not in argv else []
    if argv[0] != "finetune" and "--out" not in argv:
        out += ["--out", str(tmp_path / "reports")]
    code = invoke([*argv, *out])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    # one line says it (progress bars of loading may come before it), and no traceback
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert err.splitlines()[-1].startswith("interp") and message in err.splitlines()[-1], err
    assert not looks_finished(tmp_path / "reports")
    assert not list((tmp_path / "results").glob("*.jsonl")) and not (tmp_path / "results" / "run.json").exists()


def test_the_table_covers_every_subcommand():
    from interp.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands - {"run"} <= {argv[0] for argv, _ in CASES} | {"run"}


def test_debug_shows_the_traceback(capsys):
    assert invoke(["removal", "--first", "6", "--last", "4", "--debug", "--out", "/tmp/interp-debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("interp: error:")


def test_cuda_on_a_machine_without_it_is_refused(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert invoke(["attention", "--device", "cuda"]) == 2
    assert "argument --device: 'cuda': this torch has no CUDA device" in capsys.readouterr().err


def test_the_options_are_built_without_torch():
    """``interp --help`` and a bad option answer at once: building the parser imports no model code."""
    import subprocess
    import sys

    code = ("import sys, interp.cli; interp.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'transformer_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
