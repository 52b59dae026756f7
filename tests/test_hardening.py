"""What a full disk, a cut-short file or a crafted results folder does: the files a rerun reads
are whole or absent, a refusal names the file, and the command ends with exit 2 and one line."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest
import torch

import interp

from interp.cli import main
from interp.files import BrokenFile, json_text, read_json, write_atomic
from interp.tiny.default import shipped


def full_disk_after(monkeypatch, characters: int) -> None:
    """Every text write from now on stores ``characters`` characters and then finds the disk full."""
    def write_text(self, data, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[:characters])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_write_cut_short_by_a_full_disk_leaves_the_old_file_and_nothing_else(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text('{"old": 1}')
    full_disk_after(monkeypatch, 3)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, '{"new": 2}')
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": 1} and [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_json_file_cut_short_is_refused_naming_it(tmp_path):
    path = tmp_path / "cot.settings.json"
    path.write_text("")
    with pytest.raises(BrokenFile, match=rf"{path} is not valid JSON .* delete it"):
        read_json(path)


def test_summaries_are_strict_json_with_null_for_an_undefined_accuracy():
    text = json_text({"accuracy": math.nan, "rows": [{"p": math.inf, "n": 0}], "name": "x"})
    assert json.loads(text) == {"accuracy": None, "rows": [{"p": None, "n": 0}], "name": "x"}
    assert "NaN" not in text and "Infinity" not in text


def test_a_full_disk_while_a_report_is_written_exits_2_with_one_line_and_a_rerun_completes(tmp_path, monkeypatch,
                                                                                            capsys):
    argv = ["attention", "--model", str(shipped()), "--out", str(tmp_path / "report"), "--max-new-tokens", "4"]
    full_disk_after(monkeypatch, 100)
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("Loading")]
    assert err == ["interp: error: [Errno 28] No space left on device"]  # one line, no chained traceback
    monkeypatch.undo()
    assert main(argv) == 0
    index = (tmp_path / "report" / "index.html").read_text()
    assert "Unfinished report" not in index and not list((tmp_path / "report").glob(".*.tmp"))


def test_review_cells_that_a_spreadsheet_would_run_stay_text():
    from interp.accuracy.harness import as_cell

    assert as_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert [as_cell(t) for t in ("+1", "-2", "@SUM(A1)", "\tx", "plain", "")] == ["'+1", "'-2", "'@SUM(A1)", "'\tx", "plain", ""]


def mmlu(tmp_path, text: str | bytes) -> Path:
    folder = tmp_path / "mmlu"
    folder.mkdir(exist_ok=True)
    path = folder / "anatomy_test.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


@pytest.mark.parametrize("text, message", [
    ("Q?,a,b,c,d,AB\n", r"anatomy_test\.csv:1: answer must be one letter, A, B, C or D, got 'AB'"),
    ("Q?,a,b,c,d,BCD\n", r"anatomy_test\.csv:1: answer must be one letter"),
    ("Q?,a,b,c,d,A\n ,a,b,c,d,B\n", r"anatomy_test\.csv:2: empty question"),
    ("Q?,a,,c,d,A\n", r"anatomy_test\.csv:1: empty B"),
    ("Q\xe9?,a,b,c,d,A\n".encode("latin-1"), r"anatomy_test\.csv: not UTF-8 text"),
    ('"' + "x" * 140_000 + '",a,b,c,d,A\n', r"anatomy_test\.csv:1: not a well-formed CSV row \(field larger than"),
])
def test_mmlu_rows_are_checked_naming_file_and_line(tmp_path, text, message):
    from interp.accuracy.data import DataError, load_mmlu

    with pytest.raises(DataError, match=message):
        load_mmlu(mmlu(tmp_path, text))


def test_a_byte_order_mark_is_not_part_of_the_first_question(tmp_path):
    from interp.accuracy.data import load_mmlu

    assert load_mmlu(mmlu(tmp_path, "\ufeffWhat is it?,a,b,c,d,C\n"))[0].question == "What is it?"


def test_piqa_rows_and_labels_are_checked_naming_file_and_line(tmp_path):
    from interp.accuracy.data import DataError, load_piqa

    folder = tmp_path / "piqa"
    folder.mkdir()
    rows = [{"goal": f"goal {i}", "sol1": "one", "sol2": "two"} for i in range(3)]
    (folder / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "valid-labels.lst").write_text("0\n\n1\n1\n")
    with pytest.raises(DataError, match=r"valid-labels\.lst:2: a blank line; .* would shift every label after it"):
        load_piqa(folder)
    (folder / "valid-labels.lst").write_text("0\n1\n1\n")
    assert [i.answer for i in load_piqa(folder)] == ["A", "B", "B"]
    (folder / "valid.jsonl").write_text("".join(json.dumps({**r, "sol2": " " if i == 1 else "two"}) + "\n"
                                                for i, r in enumerate(rows)))
    with pytest.raises(DataError, match=r"valid\.jsonl:2: fields \['sol2'\] are empty"):
        load_piqa(folder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_model_on_a_missing_device_fails_first_with_the_fix(tiny_models):
    hf, _ = tiny_models(4)
    with pytest.raises(interp.ModelLoadError, match="this torch has no CUDA device .* install a CUDA build"):
        interp.load_model(hf, device="cuda")


def test_a_hub_name_neither_cached_nor_reachable_fails_at_once_without_asking_the_hub(monkeypatch):
    import huggingface_hub
    import transformers

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    real = transformers.AutoConfig.from_pretrained

    def local_only(name, *args, **kwargs):
        assert kwargs.get("local_files_only"), "the hub was asked (its client retries for many seconds offline)"
        return real(name, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", local_only)
    with pytest.raises(interp.ModelLoadError, match="not in the local Hugging Face cache.*cannot be reached.*"
                                                    "huggingface-cli download someone/never-cached"):
        interp.load_model("someone/never-cached")
