from __future__ import annotations

import re

import pytest
import torch

from interp.cli import main
from tests.conftest import STORIES
from tests.test_report_scale import LIMIT_MB


@pytest.mark.slow  # the whole main job on SmolLM2 (a minute)
def test_main_job_writes_an_offline_report(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path), "--max-new-tokens", "4", "--questions", "2", "--cot-tokens", "8"]) == 0
    assert "report:" in capsys.readouterr().out
    written = {p.name for p in tmp_path.glob("*.html")} - {"index.html"}
    # Written out here, not taken from the registry under test: the main job's nine pages (the
    # finetuning page, base against the shipped pair, carries the dropout comparison).
    assert written == {"attention.html", "anchors.html", "ablation.html", "removal.html", "emulation.html",
                       "methods.html", "heads.html", "finetuning.html", "accuracy-structured.html"}
    library = tmp_path / "plotly.min.js"
    assert library.stat().st_size > 3_000_000 and "plotly.js" in library.read_text()[:2000]
    for page in tmp_path.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", text), page.name  # nothing from the network
        sources = re.findall(r"<script[^>]+src=[\"']?([^\"' >]+)", text)
        assert all((tmp_path / source).is_file() for source in sources), (page.name, sources)
        assert "&quot;commit&quot;" in text and "&quot;transformer-lens&quot;" in text
        if page.name != "index.html":  # figures drawn with the folder's one plotly.js
            # a 30-layer model's pages: within the same budget as LLaMA-2-sized ones (test_report_scale)
            assert "Plotly.newPlot" in text and sources == ["plotly.min.js"] and len(text) < LIMIT_MB * 2**20
            # every figure says under it how to read it
            assert text.count("Plotly.newPlot") == text.count('<p class="caption">'), page.name
    assert sum(p.stat().st_size for p in tmp_path.iterdir() if p.is_file()) < 17_000_000  # nine pages, one plotly.js
    index = (tmp_path / "index.html").read_text()
    assert all(name in index for name in written)


def test_methods_page_sets_every_method_beside_the_emulation(tmp_path):
    import html
    import json

    from interp.tiny.default import shipped

    assert main(["methods", "--model", str(shipped()), "--out", str(tmp_path), "--max-new-tokens", "4"]) == 0
    text = html.unescape((tmp_path / "methods.html").read_text())
    names = ["original", "top-layer emulation (the paper)", "ACT sink calibration", "PASTA steering to the prompt",
             "ZeroTuning sink scaling, gamma 0.6", "attention temperature 1.2", "StreamingLLM window (4 sinks, 64 recent)"]
    assert all(name in text for name in names)
    # the head shown is one the page's ACT edits, chosen by select_heads on held-out questions
    shown = re.search(r"Head (\d+)\.(\d+) under each method", text)
    record = re.search(r"ACT sink calibration: \[\{'intervention': 'SinkCalibration', 'heads': (.*?), 'beta'", text)
    assert shown and record and f"({shown[1]}, ({shown[2]}" in record[1].replace(",)", ")")
    assert "methods.html" in json.loads((tmp_path / "pages.json").read_text())


def test_self_contained_pages_carry_plotly_inline(tmp_path):
    from interp.tiny.default import shipped

    assert main(["attention", "--model", str(shipped()), "--out", str(tmp_path), "--self-contained"]) == 0
    text = (tmp_path / "attention.html").read_text()
    assert not (tmp_path / "plotly.min.js").exists() and "<script src=" not in text
    assert "Plotly.newPlot" in text and len(text) > 3_000_000


@pytest.mark.parametrize("argv, message", [
    (["removal", "--first", "4", "--last", "20"], "layers [20] do not exist in a model with 10 layers"),
    (["removal", "--first", "6", "--last", "4"], "--first 6 comes after --last 4"),
    (["attention", "--zoom-layers", "12"], "layers [12] do not exist in a model with 10 layers"),
    (["heads", "--show", "1.9"], "head 9 does not exist"),
    (["anchors", "--prompt-range", "Hi", "--dialogue", ""], "must be non-empty"),
    (["run", "--model", "/no/such/model"], "does not exist"),
])
def test_bad_arguments_give_clear_errors(tmp_path, capsys, argv, message):
    from interp.tiny.default import shipped

    model = [] if "--model" in argv else ["--model", str(shipped())]  # the 10-layer test model
    assert main([*argv, *model, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_studies_run_on_stories260k(tmp_path):
    if not STORIES.is_file():
        pytest.skip("stories260K not found (needs ../shared beside the project)")
    prompt = "Lily likes cats.\nTom likes dogs.\nThey play: they run. The end.\n"
    assert main(["run", "--model", str(STORIES), "--prompt-range", prompt, "--dialogue", "One day, Lily saw a cat.",
                 "--first", "1", "--last", "3", "--out", str(tmp_path), "--max-new-tokens", "8"]) == 0
    union = re.search(r"Union over layers, the first token left out: positions [^<]*",
                      (tmp_path / "anchors.html").read_text()).group()
    assert "&#x27;.&#x27;" in union and "&#x27;\\n&#x27;" in union
    assert not (tmp_path / "dropout.html").exists()  # no second model given


def test_continuations_start_where_the_reference_answer_does():
    from interp.analysis.effects import intervention_effects
    from interp.studies.base import Example
    from interp.shipped import default_example
    from interp.tiny.default import load_shipped

    model = load_shipped()
    prompt, dialogue, answer = default_example()
    example = Example.from_text(model, prompt, dialogue, answer)
    assert example.ids[0, : example.answer_start].tolist() == model.tokenizer(prompt + dialogue).input_ids
    original, = intervention_effects(model, example.ids, example.prompt_stop, {"original": []},
                                     max_new_tokens=40, generate_from=example.answer_start)
    # Against Hugging Face's own greedy generate on the plain model (no interp decoding).
    start = example.ids[:, : example.answer_start]
    expected = model.plain.generate(start, attention_mask=torch.ones_like(start), max_new_tokens=40, do_sample=False,
                                    pad_token_id=model.tokenizer.pad_token_id)[0, start.shape[1]:]
    eos = (expected == model.tokenizer.eos_token_id).nonzero()
    expected = expected[: eos[0, 0]] if len(eos) else expected
    assert original.continuation == model.tokenizer.decode(expected, skip_special_tokens=True).strip()
    assert Example.from_text(model, prompt, dialogue).answer_start is None


@pytest.mark.slow
def test_run_on_stories260k_refuses_up_front_then_adapts_the_removal_span(tmp_path, capsys):
    """Its 512-token context cannot hold the default example (the paper's instruction alone is 519
    tokens there): refused before any study runs. With a short example of one's own every study
    runs, the removal on the middle of its 5 layers (the paper's 4 to 8 do not exist there)."""
    if not STORIES.is_file():
        pytest.skip("stories260K not found (needs ../shared beside the project)")
    assert main(["run", "--model", str(STORIES), "--out", str(tmp_path / "default")]) == 2
    assert "more than the model's context of 512 tokens" in capsys.readouterr().err
    assert not (tmp_path / "default").exists()
    assert main(["run", "--model", str(STORIES), "--prompt-range", "Lily likes cats. Tom likes dogs.\n",
                 "--dialogue", "One day, Lily saw a cat.", "--out", str(tmp_path / "own")]) == 0
    assert "alternating layers [1, 3]" in (tmp_path / "own" / "removal.html").read_text()
    assert "Unfinished" not in (tmp_path / "own" / "index.html").read_text()


def test_a_failing_study_keeps_the_pages_before_it_and_marks_the_report_unfinished(tmp_path, capsys, monkeypatch):
    import interp.studies.removal

    def fails(context):
        raise RuntimeError("the removal study broke")

    from interp.tiny.default import shipped

    monkeypatch.setattr(interp.studies.removal, "run", fails)
    assert main(["run", "--model", str(shipped()), "--out", str(tmp_path), "--max-new-tokens", "4"]) == 2
    assert "RuntimeError: the removal study broke" in capsys.readouterr().err.splitlines()[-1]
    index = (tmp_path / "index.html").read_text()
    assert "Unfinished report" in index and "the removal study broke" in index
    assert all((tmp_path / f"{name}.html").is_file() for name in ("attention", "anchors", "ablation"))
    assert not (tmp_path / "removal.html").exists() and not (tmp_path / "heads.html").exists()


def test_text_from_files_and_prompts_is_drawn_as_text_in_figures(tmp_path):
    import json

    import plotly.graph_objects as go

    from interp.report.page import Section, write_page

    crafted = '<b>big</b><a href="https://example.com">link</a>'
    fig = go.Figure(go.Bar(x=["0 '<s>'", "1 'a&b'"], y=[1, 2], name=crafted,
                           hovertemplate="x %{x}<br>y %{y}<extra></extra>"))
    fig.update_layout(title='<span style="color:red">method alpha=2</span>')
    page = write_page(tmp_path / "p.html", "t", [Section("s", "", figures=[fig])], {}, back=None).read_text()
    figure = json.loads(re.search(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", page, re.S).group(1))
    assert figure[0]["name"] == "&lt;b&gt;big&lt;/b&gt;&lt;a href=\"https://example.com\"&gt;link&lt;/a&gt;"
    assert figure[0]["x"] == ["0 '&lt;s&gt;'", "1 'a&amp;b'"]  # plotly shows entities as the characters
    assert figure[0]["hovertemplate"] == "x %{x}<br>y %{y}<extra></extra>"  # the page's own markup stays
    assert "<span style" not in page and "<b>big" not in page


def test_the_accuracy_page_shows_the_letters_answered_the_majority_baseline_and_why_readings_part():
    from interp.accuracy.data import Item
    from interp.accuracy.harness import summarise
    from interp.accuracy.record import Answer
    from interp.report.accuracy import accuracy_page

    def rec(i, gold, final, paper, forced, options=("w", "x", "y", "z")):
        item = Item(str(i), "test", "stem", "stem", "?", options, gold)
        return Answer(item, 10, 5, "r", {"forced": forced, "final": final, "paper": paper, "strict": None})

    # Right answers: A on 6 of 10. The model always says A (forced); final reads 4 answers, paper guesses on every one.
    golds = "AAAAAABBCD"
    cot = [rec(i, g, "A" if i < 4 else None, "A" if i < 4 else "B", "A") for i, g in enumerate(golds)]
    shifted = [rec(i, "ABCDA"[("ABCD".index(g) + 1) % 4], "A" if i < 4 else None, "A", "A", ("z", "w", "x", "y"))
               for i, g in enumerate(golds)]
    runs = {"cot": cot, "cot-shifted": shifted}
    page = accuracy_page("t", summarise(runs), runs)
    sections = {s.title: s for s in page.sections}
    letters = sections["Which letters are answered"]
    assert "always answering A would score 60.0%" in letters.text and "a uniform guess: 25.0%" in letters.text
    assert "cot (the model's forced answer) answers A on 100.0%" in letters.text
    # Rotated, the forced answer keeps letter A on all 10 and the option on none: position, not content.
    assert "names the same option as before on 0.0% of them and the same letter on 100.0%" in letters.text
    header, rows = letters.tables[0]
    assert header[2:7] == ["A", "B", "C", "D", "none"]
    assert rows[0][2:6] == [6, 2, 1, 1] and rows[-2][-1] == "60.0%"
    # paper reads 6 questions final leaves unanswered, 2 of them right (B): a line says so.
    paper = sections["Accuracy and parse rate, paper extraction"].text
    assert "on 60.0% of the questions the response commits to no option" in paper and "(33.3% of those right)" in paper
    assert "reads +20 points" in paper
    final = sections["Accuracy and parse rate, final extraction"]
    assert "reads" not in final.text.split("McNemar's exact test.")[1]
    # Subjects equal to the categories are not listed twice.
    assert {row[1] for row in final.tables[0][1]} == {"overall", "category"}
