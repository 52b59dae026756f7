"""A results folder holds one run: a resume with any setting that shapes a record refused, naming
the setting and both values; a refused run leaves nothing that blocks the corrected one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from interp.cli import main
from interp.tiny.default import shipped

TINY = ["accuracy", "--benchmark", "structured", "--limit", "2", "--max-new-tokens", "8"]


def run(argv: list[str], capsys) -> tuple[int, str]:
    """The command on the tiny test model unless it names one (the harness is what is tested here)."""
    if "--model" not in argv and "--rescore" not in argv:
        argv = [*argv, "--model", str(shipped())]
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code)
    return code, capsys.readouterr().err.strip().splitlines()[-1] if code else ""


def records(folder: Path) -> list[str]:
    return sorted((folder / "cot.jsonl").read_text().splitlines())


@pytest.fixture
def mmlu(tmp_path) -> Path:
    """Two small MMLU folders: the same subjects, one question worded differently."""
    for name, word in (("mmlu", "largest"), ("other", "smallest")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "anatomy_test.csv").write_text(f"Which bone is the {word}?,femur,ulna,radius,stapes,A\n"
                                                 "Where is the heart?,chest,leg,arm,head,A\n")
        (folder / "virology_test.csv").write_text("What is a virus?,a germ,a rock,a tree,a fish,A\n")
    return tmp_path


def test_another_table_size_is_refused_naming_it(tmp_path, capsys):
    out = ["--results", str(tmp_path / "rx"), "--out", str(tmp_path / "reports")]
    assert run([*TINY, *out], capsys)[0] == 0
    before = records(tmp_path / "rx")
    code, message = run([*TINY, *out, "--table-pairs", "2", "4"], capsys)
    assert code == 2 and "--table-pairs: this folder holds a run with [8, 10], this run has [2, 4]" in message
    code, message = run([*TINY[:3], "--limit", "3", *TINY[5:], *out], capsys)
    assert code == 2 and "--limit: this folder holds a run with 2, this run has 3" in message
    code, message = run([*TINY[:5], "--max-new-tokens", "9", *out], capsys)
    assert code == 2 and "--max-new-tokens: this folder holds a run with 8, this run has 9" in message
    assert records(tmp_path / "rx") == before  # nothing generated, nothing mixed in
    assert run([*TINY, *out], capsys)[0] == 0 and records(tmp_path / "rx") == before  # the same run resumes


@pytest.mark.slow
def test_other_data_or_subjects_are_refused_naming_them(mmlu, tmp_path, capsys):
    base = ["accuracy", "--benchmark", "mmlu", "--max-new-tokens", "4", "--results", str(tmp_path / "rx"),
            "--out", str(tmp_path / "reports")]
    assert run([*base, "--data", str(mmlu / "mmlu")], capsys)[0] == 0
    code, message = run([*base, "--data", str(mmlu / "mmlu"), "--subjects", "anatomy"], capsys)
    assert code == 2 and "--subjects: this folder holds a run with (not given), this run has ['anatomy']" in message
    code, message = run([*base, "--data", str(mmlu / "other")], capsys)
    assert code == 2 and f"--data: this folder's questions came from {mmlu / 'mmlu'}, this run reads {mmlu / 'other'}" \
        in message
    (mmlu / "mmlu" / "virology_test.csv").write_text("What is a virus?,a germ,a rock,a tree,a cat,A\n")
    code, message = run([*base, "--data", str(mmlu / "mmlu")], capsys)
    assert code == 2 and "their text differs (the data files changed since)" in message


@pytest.mark.slow
def test_the_same_model_by_another_path_resumes_and_another_model_is_refused(tmp_path, capsys, monkeypatch):
    out = ["--results", str(tmp_path / "rx"), "--out", str(tmp_path / "reports")]
    assert run([*TINY, "--model", str(shipped()), *out], capsys)[0] == 0
    before = records(tmp_path / "rx")
    monkeypatch.chdir(shipped().parent)
    assert run([*TINY, "--model", os.path.join(".", shipped().name), *out], capsys)[0] == 0
    assert records(tmp_path / "rx") == before
    code, message = run([*TINY, "--model", str(shipped("cot-tiny-dropout")), *out], capsys)
    assert code == 2 and "--model: this folder holds answers of" in message and "whose weights differ" in message


@pytest.mark.parametrize("bad, fix", [
    (["--method", "prompt-removal:first=99,last=99"], ["--method", "prompt-removal:first=2,last=4"]),
    (["--max-new-tokens", "600"], ["--max-new-tokens", "8"]),
])
def test_a_refused_run_leaves_nothing_that_blocks_the_corrected_one(tmp_path, capsys, bad, fix):
    out = ["--results", str(tmp_path / "rx"), "--out", str(tmp_path / "reports")]
    argv = ["accuracy", "--benchmark", "structured", "--limit", "1", "--max-new-tokens", "8", *out]
    code, message = run([*argv, *bad], capsys)
    assert code == 2
    assert not (tmp_path / "rx").exists() or not list((tmp_path / "rx").iterdir())
    assert not (tmp_path / "reports" / "index.html").exists()
    assert run([*argv, *fix], capsys)[0] == 0


def test_rescore_refuses_a_corrupt_line_and_keeps_the_file(tmp_path, capsys):
    out = ["--results", str(tmp_path / "rx"), "--out", str(tmp_path / "reports")]
    assert run([*TINY, *out], capsys)[0] == 0
    path = tmp_path / "rx" / "cot.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not a record", *lines[1:]]) + "\n")
    kept = path.read_text()
    code, message = run(["accuracy", "--benchmark", "structured", "--rescore", *out], capsys)
    assert code == 2 and f"{path}:2 is not a result record" in message
    assert path.read_text() == kept


def test_the_default_new_tokens_fit_the_model_context(tmp_path, capsys):
    """The README's sweep: no --max-new-tokens, on a model whose context (512) is below the default 2048."""
    out = ["--results", str(tmp_path / "rx"), "--out", str(tmp_path / "reports")]
    assert run(["accuracy", "--benchmark", "structured", "--limit", "1", "--method", "emulation:alpha=0.1",
                "emulation:alpha=0.3", *out], capsys)[0] == 0
    settings = json.loads((tmp_path / "rx" / "run.json").read_text())["generation"]
    assert 0 < settings["max_new_tokens"] < 512 - 150


def test_the_weights_fingerprint_depends_on_the_weights_not_on_the_thread_count():
    # A run resumed with another --threads is the same model (a float sum over a large weight
    # came out in another order, and a resumed run was refused as another model's); one changed
    # weight is not.
    import torch

    from interp.accuracy.identity import weights_fingerprint

    torch.manual_seed(0)
    model = torch.nn.Embedding(8000, 1000)  # 8M values: large enough for a parallel sum
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = weights_fingerprint(model)
        torch.set_num_threads(2)
        two = weights_fingerprint(model)
    finally:
        torch.set_num_threads(threads)
    assert one == two
    with torch.no_grad():
        model.weight[3, 5] += 1e-3  # a value no sample reads (every 1953rd is read)
    assert weights_fingerprint(model) != one
