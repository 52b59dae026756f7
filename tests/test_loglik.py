"""Log-likelihood scoring (interp.accuracy.loglik): per question, the same log-likelihoods and
the same acc and acc_norm as lm-evaluation-harness's own ``hf`` model running its own task
definitions (piqa, social_iqa, mmlu, mmlu_continuation) on the local files; a run with a method,
killed and resumed, ends as an uninterrupted one; a method's log-likelihoods equal an
independently written attention with the same edit."""

from __future__ import annotations

import csv
import json

import pytest

lm_eval = pytest.importorskip("lm_eval")
import yaml  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

import interp  # noqa: E402
from interp.accuracy import loglik  # noqa: E402
from interp.accuracy.data import load_mmlu, load_piqa, load_siqa  # noqa: E402
from interp.accuracy.harness import evaluate  # noqa: E402
from interp.accuracy.methods import parse_method  # noqa: E402
from interp.accuracy.runner import read_results  # noqa: E402
from interp.accuracy.structured import held_out_items  # noqa: E402
from interp.edits.plan import plan_edits  # noqa: E402
from tests.conftest import SHARED  # noqa: E402
from tests.reference import Edit  # noqa: E402
from tests.test_interventions_vs_hf import set_edit  # noqa: E402
from tests.test_lmeval import reference_loglikelihood  # noqa: E402

N = 6  # questions per task
TASKS = lm_eval.__path__[0] + "/tasks"
SUBJECT = "high_school_geography"


def _task(name: str, files: list[str], data: str, rows: list[dict], extra: dict | None = None) -> dict:
    """lm-evaluation-harness's own task definition (its YAML files, merged as its includes merge
    them) with its data read from ``rows`` written to ``data``, not from the hub."""
    config: dict = {}
    for file in files:
        text = open(f"{TASKS}/{file}").read()
        config |= {k: v for k, v in yaml.safe_load(text).items() if k != "include"}
    with open(data, "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    split = config.get("test_split") or config.get("validation_split")
    config |= {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {split: data}},
               "dataset_name": None, **(extra or {})}
    config.pop("tag", None)
    config.pop("fewshot_split", None)
    config.pop("training_split", None)
    return config


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    if not (SHARED / "piqa").is_dir():
        pytest.skip("the benchmark files are not beside the project (../shared/data)")
    root = tmp_path_factory.mktemp("tasks")
    piqa = [json.loads(line) | {"label": int(label)} for line, label in
            zip(open(SHARED / "piqa" / "valid.jsonl").readlines()[:N], open(SHARED / "piqa" / "valid-labels.lst"))]
    siqa = [json.loads(line) | {"label": label.strip()} for line, label in
            zip(open(SHARED / "siqa" / "dev.jsonl").readlines()[:N], open(SHARED / "siqa" / "dev-labels.lst"))]
    mmlu = [{"question": r[0], "choices": r[1:5], "answer": "ABCD".index(r[5]), "subject": SUBJECT}
            for r in list(csv.reader(open(SHARED / "mmlu" / "test" / f"{SUBJECT}_test.csv")))[:N]]
    configs = {
        "piqa": _task("local_piqa", ["piqa/piqa.yaml"], str(root / "piqa.jsonl"), piqa),
        "siqa": _task("local_siqa", ["siqa/siqa.yaml"], str(root / "siqa.jsonl"), siqa),
        "letter": _task("local_mmlu", ["mmlu/default/_default_template_yaml", f"mmlu/default/mmlu_{SUBJECT}.yaml"],
                        str(root / "mmlu.jsonl"), mmlu),
        "cloze": _task("local_mmlu_cloze", ["mmlu/continuation/_continuation_template_yaml",
                                            f"mmlu/continuation/mmlu_{SUBJECT}.yaml"], str(root / "mmlu.jsonl"), mmlu),
    }
    for config in configs.values():
        (root / f"{config['task']}.yaml").write_text(yaml.safe_dump(config))
    items = {"piqa": (load_piqa(SHARED / "piqa")[:N], "cloze"), "siqa": (load_siqa(SHARED / "siqa")[:N], "cloze"),
             "letter": (load_mmlu(SHARED / "mmlu", [SUBJECT])[:N], "letter"),
             "cloze": (load_mmlu(SHARED / "mmlu", [SUBJECT])[:N], "cloze")}
    return TaskManager(include_path=str(root)), configs, items


@pytest.mark.slow
@pytest.mark.parametrize("task", ["piqa", "siqa", "letter", "cloze"])
def test_log_likelihoods_equal_lm_evaluation_harness_hf_model(task, tasks, llama2_random):
    manager, configs, items = tasks
    name = configs[task]["task"]
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={llama2_random},dtype=float32",
                                      tasks=[name], task_manager=manager, log_samples=True, device="cpu",
                                      batch_size=3, bootstrap_iters=0)
    samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
    model = interp.load_model(str(llama2_random), dtype="float32")
    questions, form = items[task]
    encoded = [loglik.encode(model, loglik.choices_for(item, form)) for item in questions]
    ours = loglik.option_logprobs(model, encoded, [plan_edits(model)] * len(encoded), batch_size=4)
    for sample, item, values in zip(samples, questions, ours):
        theirs = [float(r[0][0]) for r in sample["resps"]]
        assert max(abs(a - b) for a, b in zip(theirs, values)) < 1e-4, (item.id, theirs, values)
        read = loglik.readings(values, loglik.choices_for(item, form).choices)
        assert float(read["acc"] == item.answer) == sample["acc"]
        if "acc_norm" in sample:
            assert float(read["acc_norm"] == item.answer) == sample["acc_norm"]


def test_contexts_are_lm_evaluation_harness_templates():
    item = load_siqa(SHARED / "siqa")[0] if (SHARED / "siqa").is_dir() else pytest.skip("no ../shared/data")
    request = loglik.choices_for(item, "cloze")
    row = json.loads(open(SHARED / "siqa" / "dev.jsonl").readline())
    assert request.context == f"Q: {row['context']} {row['question']}\nA:"
    assert request.choices == (row["answerA"], row["answerB"], row["answerC"])
    assert request.context[slice(*request.question)] == f"Q: {row['context']} {row['question']}"
    mmlu = load_mmlu(SHARED / "mmlu", [SUBJECT])[0]
    letter = loglik.choices_for(mmlu, "letter")
    assert letter.context.startswith("The following are multiple choice questions (with answers) about high school "
                                     "geography.\n\n")
    assert letter.context.endswith(f"\nD. {mmlu.options[3]}\nAnswer:") and letter.choices == ("A", "B", "C", "D")
    assert letter.context[slice(*letter.question)].endswith(f"D. {mmlu.options[3]}")


def test_acc_norm_divides_by_characters_and_ties_go_to_the_first():
    assert loglik.readings([-10.0, -12.0], ["ab", "abcdef"]) == {"acc": "A", "acc_norm": "B"}
    assert loglik.readings([-3.0, -3.0, -5.0], ["x", "y", "zzzzz"]) == {"acc": "A", "acc_norm": "C"}


class Dies(Exception):
    pass


def test_a_run_with_a_method_resumes_after_a_kill_and_equals_the_reference(tiny_models, tmp_path, monkeypatch):
    ref, model = tiny_models(4)
    items = held_out_items(5)
    method = parse_method("emulation:alpha=0.6,threshold=0.05")
    whole = evaluate(model, items, tmp_path / "whole", methods=[method], scoring="cloze", progress=False)
    monkeypatch.setattr(loglik, "CHUNK", 3)
    calls, real = [], loglik.option_logprobs

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # the baseline's 4 chunks done, the method's first chunk written
            raise Dies
        return real(*args, **kwargs)

    monkeypatch.setattr(loglik, "option_logprobs", dying)
    with pytest.raises(Dies):
        evaluate(model, items, tmp_path / "killed", methods=[method], scoring="cloze", progress=False)
    assert len(read_results(tmp_path / "killed" / "cloze+emulation(alpha=0.6,threshold=0.05).jsonl")) == 3
    monkeypatch.setattr(loglik, "option_logprobs", real)
    resumed = evaluate(model, items, tmp_path / "killed", methods=[method], scoring="cloze", progress=False)
    for name, answers in whole.runs.items():
        again = {a.id: a for a in resumed.runs[name]}
        for answer in answers:
            assert again[answer.id].predictions == answer.predictions
            assert max(abs(a - b) for a, b in zip(again[answer.id].logprobs, answer.logprobs)) < 1e-5
    # the method's log-likelihoods: an independently written attention with the same edit
    set_edit(Edit("emulation", alpha=0.6, threshold=0.05, last_layer=3), [0])
    tokenizer = model.tokenizer
    worst = gap = 0.0
    for answer, plain in zip(whole.runs["cloze+emulation(alpha=0.6,threshold=0.05)"], whole.runs["cloze"]):
        request = loglik.choices_for(answer.item, "cloze")
        expected = [reference_loglikelihood(ref, tokenizer, request.context, " " + c) for c in request.choices]
        worst = max(worst, max(abs(a - b) for a, b in zip(answer.logprobs, expected)))
        gap = max(gap, max(abs(a - b) for a, b in zip(answer.logprobs, plain.logprobs)))
    assert worst < 1e-3 and gap > 1e-2
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["modes"] == ["acc", "acc_norm"] and summary["baseline"] == "cloze"
    overall = [r for r in summary["rows"] if r["level"] == "overall" and r["mode"] == "acc"]
    assert overall[1]["paired_n"] == len(items)  # the method against the baseline, paired on every question
    hand = sum(a.predictions["acc"] == a.item.answer for a in whole.runs["cloze"]) / len(items)
    assert overall[0]["accuracy"] == pytest.approx(hand)
    from interp.report.accuracy import accuracy_page, page_title

    page = accuracy_page(page_title(summary["baseline"], "structured"), resumed.summary, resumed.runs)
    assert page.title == "Log-likelihood accuracy (cloze): structured"
    assert [s.title for s in page.sections][0] == "Accuracy and parse rate, log-likelihood (acc)"
    assert not any("Computed tokens" in s.title for s in page.sections)  # nothing was generated


def test_an_unfinished_variant_is_left_out_of_the_summaries_until_its_run_finishes(tiny_models, tmp_path,
                                                                                   monkeypatch):
    """Two commands on one folder (one still running, or killed): the other's summaries, and the
    reproduction's reading of the folder, hold only the variants that answered every question."""
    from interp.reproduction.findings import runs_of

    _, model = tiny_models(2)
    items = held_out_items(3)
    method = parse_method("temperature:temperature=0.8")
    real, calls = loglik.option_logprobs, []
    monkeypatch.setattr(loglik, "CHUNK", 2)

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the baseline's 3 chunks and the method's first written
            raise Dies
        return real(*args, **kwargs)

    monkeypatch.setattr(loglik, "option_logprobs", dying)
    with pytest.raises(Dies):
        evaluate(model, items, tmp_path, methods=[method], scoring="cloze", progress=False)
    monkeypatch.setattr(loglik, "option_logprobs", real)
    partial = "cloze+temperature(temperature=0.8)"
    assert len(read_results(tmp_path / f"{partial}.jsonl")) == 2  # of 6
    with pytest.warns(UserWarning, match=r"temperature=0\.8\) has not answered 4 of the baseline's questions"):
        evaluate(model, items, tmp_path, methods=[parse_method("emulation")], scoring="cloze", progress=False)
    variants = {r["variant"] for r in json.loads((tmp_path / "summary.json").read_text())["rows"]}
    assert variants == {"cloze", "cloze+emulation"}
    with pytest.warns(UserWarning):
        assert set(runs_of(tmp_path)) == {"cloze", "cloze+emulation"}
    evaluate(model, items, tmp_path, methods=[method], scoring="cloze", progress=False)
    variants = {r["variant"] for r in json.loads((tmp_path / "summary.json").read_text())["rows"]}
    assert variants == {"cloze", "cloze+emulation", partial}


def test_every_peer_method_runs_in_the_harness_and_acts(tiny_models, tmp_path):
    _, model = tiny_models(4)
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps({"1": [0, 2], "3": [1]}))
    specs = ["temperature:temperature=0.5", "sink-scaling:gamma=3", "sink-window:sinks=2,window=4",
             f"act:heads={heads},threshold=0.05", f"pasta:heads={heads},alpha=0.05"]
    items = held_out_items(2)
    done = evaluate(model, items, tmp_path / "out", methods=[parse_method(s) for s in specs], scoring="letter",
                    progress=False)
    base = {a.id: a.logprobs for a in done.runs["letter"]}
    assert len(done.runs) == 1 + len(specs)
    for name, answers in done.runs.items():
        if name != "letter":  # each method changed the option log-likelihoods of some question
            assert max(abs(x - y) for a in answers for x, y in zip(a.logprobs, base[a.id])) > 1e-3, name
    assert "letter+act(heads=heads,threshold=0.05).settings.json" in {p.name for p in (tmp_path / "out").iterdir()}


def test_a_question_past_the_context_stops_the_run_before_anything_is_recorded_or_selected(tiny_models, tmp_path,
                                                                                          monkeypatch):
    """Counted by hand: a question whose context alone is longer than the model's; with heads=auto
    the selection (minutes on a real model) must not have started, nor the folder been written."""
    from interp.accuracy import selected
    from interp.accuracy.data import Item

    _, model = tiny_models(4)
    long = Item("t/long", "structured", "stem", "stem", "Values: " + "m 51, " * 400 + "z 44. What is z?", ("44", "51"), "A")
    monkeypatch.setattr(selected, "prepare", lambda *a, **k: pytest.fail("heads were selected before the check"))
    held = selected.held_out_questions("structured", None, held_out_items(2))
    with pytest.raises(ValueError, match=r"1 of 3 questions with their longest option exceed the model's context of \d+ tokens"):
        evaluate(model, [*held_out_items(2)[:2], long], tmp_path / "out", methods=[parse_method("act:heads=auto")],
                 scoring="cloze", progress=False, held_out=held)
    assert not (tmp_path / "out").exists()
    skipped = evaluate(model, [*held_out_items(2)[:2], long], tmp_path / "skip", methods=[], scoring="cloze",
                       progress=False, skip_over_context=True)
    assert [a.id for a in skipped.runs["cloze"] if a.skipped] == ["t/long"]
