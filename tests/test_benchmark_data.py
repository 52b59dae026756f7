from __future__ import annotations

import collections
import json

import pytest

from interp.accuracy.data import DataError, load_mmlu, load_piqa, load_siqa
from tests.conftest import SHARED

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not found")


@needs_shared
def test_real_files_load_with_their_documented_counts():
    mmlu = load_mmlu(SHARED / "mmlu")
    assert len(mmlu) == 14042 and len({i.subject for i in mmlu}) == 57
    assert set(collections.Counter(i.category for i in mmlu)) == {"STEM", "Humanities", "Social Sciences", "Other"}
    piqa, siqa = load_piqa(SHARED / "piqa"), load_siqa(SHARED / "siqa")
    assert collections.Counter(i.answer for i in piqa) == {"A": 910, "B": 928}
    assert collections.Counter(i.answer for i in siqa) == {"A": 643, "B": 654, "C": 657}
    assert siqa[0].question.count("\n") == 1 and len(siqa[0].options) == 3


def test_mmlu_none_stays_text_and_bad_rows_name_file_and_line(tmp_path):
    (tmp_path / "logic_test.csv").write_text('"Which is empty?",None,A set,"1,2",3,A\n"Q2",a,b,c,d,B\n')
    items = load_mmlu(tmp_path)
    assert items[0].options == ("None", "A set", "1,2", "3") and items[1].answer == "B"
    (tmp_path / "logic_test.csv").write_text("Q,a,b,c,d,A\nQ,a,b,c,E\n")
    with pytest.raises(DataError, match=r"logic_test.csv:2: expected 6 columns"):
        load_mmlu(tmp_path)
    (tmp_path / "logic_test.csv").write_text("Q,a,b,c,d,E\n")
    with pytest.raises(DataError, match=r"logic_test.csv:1: answer must be"):
        load_mmlu(tmp_path)
    with pytest.raises(DataError, match="subjects \\['nope'\\]"):
        load_mmlu(tmp_path, ["nope"])


def test_label_files_must_exist_and_match(tmp_path):
    data = tmp_path / "valid.jsonl"
    data.write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b"}) + "\n" + "{broken\n")
    with pytest.raises(DataError, match="valid.jsonl:2: not valid JSON"):
        load_piqa(data)
    data.write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b"}) + "\n")
    with pytest.raises(DataError, match="valid-labels.lst does not exist"):
        load_piqa(data)
    (tmp_path / "valid-labels.lst").write_text("0\n1\n")
    with pytest.raises(DataError, match="has 2 labels but .* has 1 questions"):
        load_piqa(data)
    (tmp_path / "dev.jsonl").write_text(json.dumps({"context": "c", "question": "q", "answerA": "a"}) + "\n")
    with pytest.raises(DataError, match="dev.jsonl:1: missing fields \\['answerB', 'answerC'\\]"):
        load_siqa(tmp_path)


@needs_shared
def test_the_registry_loads_each_benchmark_as_its_reader_does():
    from interp.accuracy.benchmarks import BENCHMARKS, FILE_BENCHMARKS, load_benchmark

    assert FILE_BENCHMARKS == ("mmlu", "piqa", "siqa") and BENCHMARKS["structured"].generated
    counts = {"mmlu": 14042, "piqa": 1838, "siqa": 1954}  # the files' documented sizes (SOURCES.md)
    for name in FILE_BENCHMARKS:
        assert len(load_benchmark(name, SHARED / name)) == counts[name]
    assert {i.subject for i in load_benchmark("mmlu", SHARED / "mmlu", ["anatomy"])} == {"anatomy"}
    with pytest.raises(DataError, match="unknown benchmark 'arc'; choose from mmlu, piqa, siqa, structured"):
        load_benchmark("arc", SHARED)


def test_hub_rows_become_the_items_the_files_give():
    from interp.accuracy.benchmarks import BENCHMARKS

    mmlu = BENCHMARKS["mmlu"].hub.item(3, {"subject": "anatomy", "question": "Q?", "choices": ["a", "b", "c", "d"],
                                           "answer": 2})
    assert (mmlu.id, mmlu.category, mmlu.options, mmlu.answer) == ("mmlu/anatomy/3", "STEM", ("a", "b", "c", "d"), "C")
    siqa = BENCHMARKS["siqa"].hub.item(0, {"context": "C.", "question": "Q?", "answerA": "x", "answerB": "y",
                                           "answerC": "z", "label": "3"})
    assert (siqa.question, siqa.answer) == ("C.\nQ?", "C")


def test_a_new_benchmark_is_one_entry(tmp_path, monkeypatch):
    """A benchmark of two-option questions in a JSONL of its own: one registry entry, and loading,
    held-out selection and log-likelihood contexts follow."""
    from interp.accuracy import benchmarks, loglik
    from interp.accuracy.data import Item

    rows = [{"q": f"Which is bigger, {i} or {i + 1}?", "a": str(i), "b": str(i + 1)} for i in range(6)]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def read(folder, subjects):
        return [Item(f"toy/{i}", "toy", "toy", "Toy", r["q"], (r["a"], r["b"]), "B")
                for i, r in enumerate(json.loads(line) for line in folder.read_text().splitlines())]

    monkeypatch.setitem(benchmarks.BENCHMARKS, "toy", benchmarks.Benchmark("toy", "Toy", "toy.jsonl", read))
    items = benchmarks.load_benchmark("toy", path)
    assert len(items) == 6 and items[0].options == ("0", "1")
    assert [i.id for i in loglik.selection_items("toy", path, 2)] == ["toy/5", "toy/4"]  # the file's last ones
    assert loglik.choices_for(items[0], "cloze").context == "Question: Which is bigger, 0 or 1?\nAnswer:"
