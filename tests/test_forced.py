"""The model's forced answer: after the response and the cue, the option letter with the most
probability, computed here independently (a plain Hugging Face forward, and the bridge's hook
path for an intervention)."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.accuracy.forced import CUE, Answered, forced_answers
from interp.tiny.default import load_shipped, shipped
from interp.accuracy.structured import take
from interp.model.load import load_hf


@pytest.fixture(scope="module")
def tiny():
    return load_shipped()


def questions(n=5):
    picked = take("held_out", 3, n, pairs=(8, 10))
    # A response that states one letter, some that commit to nothing, one that wrote the cue twice:
    # the forced answer exists for all.
    def response(i, q):
        return [q.completion, " I am not sure.", "", " " + q.analysis.split(".")[0] + ".",
                f"{q.completion}.\nResponse: A, no"][i % 5]

    return [Answered(q.prompt, response(i, q), len(q.options)) for i, q in enumerate(picked)]


def cued(prompt: str, response: str) -> str:
    """Where the model is asked for its letter: at the last cue it wrote itself, else after its response."""
    return prompt + response.rsplit(CUE, 1)[0] + CUE


def test_the_forced_answer_is_the_likeliest_letter_after_the_cue_in_a_plain_forward(tiny):
    plain, tokenizer = load_hf(shipped())
    asked = questions()
    got = forced_answers(tiny, asked, batch_size=3)
    for question, forced in zip(asked, got):
        ids = tokenizer(cued(question.prompt, question.response)).input_ids
        with torch.no_grad():
            logits = plain(input_ids=torch.tensor([ids])).logits[0, -1]
        letters = "ABCD"[: question.n_options]
        # the tokenizer writes " A" as one piece after ":"
        choices = [tokenizer(CUE + " " + x, add_special_tokens=False).input_ids[-1] for x in letters]
        probabilities = logits[choices].softmax(-1)
        assert forced.letter == letters[int(probabilities.argmax())]
        assert forced.probability == pytest.approx(float(probabilities.max()), abs=1e-4)


def test_a_response_that_wrote_the_cue_is_read_at_its_own_cue(tiny):
    """Whatever letter and text follow the model's own "Response:", its forced answer is the one it
    gives there, not an answer to the cue asked a second time."""
    q = take("held_out", 3, 1, pairs=(8, 10))[0]
    analysis = " " + q.analysis
    at_own_cue = forced_answers(tiny, [Answered(q.prompt, analysis, len(q.options))])[0]
    written = [Answered(q.prompt, f"{analysis}{CUE} {x}{tail}", len(q.options))
               for x in "ABCD"[: len(q.options)] for tail in ("", ".\nThe answer is B.")]
    assert {f.letter for f in forced_answers(tiny, written)} == {at_own_cue.letter}


def test_the_forced_answer_is_read_with_the_variants_interventions_active(tiny):
    emulation = (interp.TopLayerEmulation(alpha=2.0),)
    asked = [Answered(q.prompt, q.response, q.n_options, emulation) for q in questions()]
    got = forced_answers(tiny, asked, batch_size=2)
    for question, forced in zip(asked, got):
        ids = torch.tensor([tiny.tokenizer(cued(question.prompt, question.response)).input_ids])
        with torch.no_grad(), interp.intervene(tiny, *emulation):  # the bridge's hook path
            logits = tiny(ids)[0, -1]
        letters = "ABCD"[: question.n_options]
        choices = [tiny.tokenizer(CUE + " " + x, add_special_tokens=False).input_ids[-1] for x in letters]
        probabilities = logits[choices].softmax(-1)
        assert forced.letter == letters[int(probabilities.argmax())]
        assert forced.probability == pytest.approx(float(probabilities.max()), abs=1e-4)
    plain = forced_answers(tiny, questions(), batch_size=2)
    assert [f.probability for f in plain] != pytest.approx([f.probability for f in got], abs=1e-3)  # it acted


def test_rescore_with_the_model_adds_the_forced_answer_to_records_without_it(tiny, tmp_path):
    import dataclasses
    import json

    from interp.accuracy.harness import evaluate, rescore_folder
    from interp.accuracy.methods import parse_method
    from interp.accuracy.runner import read_results, write_answers
    from interp.accuracy.structured import held_out_items
    from interp.validation import UsageError

    items = held_out_items(2, pairs=(8, 10))
    fresh = evaluate(tiny, items, tmp_path, methods=[parse_method("emulation:alpha=1.0")], max_new_tokens=30,
                     progress=False).runs
    assert all(r.has_forced for records in fresh.values() for r in records)
    for name in fresh:  # as an older interp wrote them: no forced answer
        path = tmp_path / f"{name}.jsonl"
        old = [dataclasses.replace(a, predictions={k: v for k, v in a.predictions.items() if k != "forced"},
                                   forced_probability=None) for a in read_results(path).values()]
        write_answers(path, old)
    rescored = rescore_folder(tmp_path, tiny).runs
    for name, records in fresh.items():
        by_id = {r.id: r for r in rescored[name]}
        assert [by_id[r.id].predictions["forced"] for r in records] == [r.predictions["forced"] for r in records]
    assert json.loads((tmp_path / "summary.json").read_text())["modes"][0] == "forced"
    with pytest.raises(UsageError, match="not the model whose answers"):
        rescore_folder(tmp_path, load_shipped("cot-tiny-dropout"))


def test_ten_options_a_to_j_end_to_end(llama2_random, tmp_path):
    """MMLU-Pro's ten options: asked, answered, read and forced among A-J, the forced answer as a
    plain forward's argmax over the ten letters."""
    import json

    from interp.accuracy.data import Item
    from interp.accuracy.harness import evaluate
    from interp.accuracy.methods import parse_method
    from interp.accuracy.runner import Settings, prompt_for

    letters = "ABCDEFGHIJ"
    names = ["Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon"]
    items = [Item(f"pro/{i}", "pro", "pro", "pro", f"Owners: cup {names[i]}, hat Bob. Who owns the cup?",
                  tuple(names), letters[i]) for i in range(10)]
    model = interp.load_model(llama2_random)
    runs = evaluate(model, items, tmp_path, methods=[parse_method("emulation")], max_new_tokens=12, progress=False).runs
    plain, tokenizer = load_hf(llama2_random)
    choices = [tokenizer(CUE + " " + x, add_special_tokens=False).input_ids[-1] for x in letters]
    assert len(set(choices)) == 10
    for record in runs["cot"]:
        assert set(record.predictions.values()) <= set(letters) | {None}
        ids = tokenizer(cued(prompt_for(record.item, Settings(cot=True), tokenizer), record.response)).input_ids
        with torch.no_grad():
            logits = plain(input_ids=torch.tensor([ids])).logits[0, -1]
        assert record.predictions["forced"] == letters[int(logits[choices].argmax())]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["n"] for r in summary["rows"] if r["level"] == "overall"} == {10}


def test_a_tokenizer_that_writes_the_letters_alike_gets_no_forced_answer_and_the_page_says_so(stories, tmp_path):
    """stories260K's 512 tokens write " B" as one token and " A", " C", " D" as a lone space then
    the letter: after the cue, A, C and D begin alike, and with two options A's first token is a
    space that begins any word. The run goes on with the stated answers, and the page says why
    there is no forced row."""
    import json

    from interp.accuracy.harness import evaluate
    from interp.accuracy.structured import held_out_items
    from interp.report.accuracy import accuracy_page

    tokenizer = stories.tokenizer
    cued_ids = [tokenizer("x" + CUE + " " + x, add_special_tokens=False).input_ids for x in "ABCD"]
    shared = len(tokenizer("x" + CUE, add_special_tokens=False).input_ids)
    # The premise, read off the tokenizer here: A's first token after the cue is not A.
    assert tokenizer.decode([cued_ids[0][shared]]).strip() == "" and len({ids[shared] for ids in cued_ids}) < 4

    # Without the instruction: the paper's does not fit its 512-token context.
    evaluation = evaluate(stories, held_out_items(2), tmp_path, methods=(), max_new_tokens=8, instruction=False,
                          progress=False)
    records = evaluation.runs["cot"]
    assert len(records) == 4 and not any(r.has_forced for r in records)
    assert all(set(r.predictions) == {"final", "paper", "strict"} for r in records)
    assert json.loads((tmp_path / "summary.json").read_text())["modes"] == ["final", "paper", "strict"]
    page = accuracy_page("t", evaluation.summary, evaluation.runs)
    first = page.sections[0]
    assert first.title == "Accuracy and parse rate, final extraction" and "No question has a forced answer" in first.text
