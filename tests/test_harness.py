"""The accuracy harness end to end on the shipped tiny model (no ../shared needed): every kind of
method, resume after a kill, batching, shards, parse rates, re-scoring, the context guard (also on
stories260K with the real benchmark files) and the parameter checks."""

from __future__ import annotations

import dataclasses

import json

import pytest

from interp.accuracy import runner, stats
from interp.accuracy import record as record_module
from interp.accuracy.data import Item, load_mmlu, load_piqa, load_siqa
from interp.accuracy.harness import evaluate, limit_per_subject, rescore_folder
from interp.accuracy.methods import parse_method
from interp.accuracy.prompts import instruction
from interp.accuracy.record import Answer
from interp.accuracy.runner import Settings, run
from interp.cli import main
from interp.model.load import load_model
from interp.accuracy.structured import held_out_items
from interp.tiny.default import load_shipped, shipped
from interp.validation import UsageError
from tests.conftest import SHARED, dies_after


@pytest.fixture(scope="module")
def tiny():
    return load_shipped()


@pytest.fixture(scope="module")
def items():
    return held_out_items(3)  # 3 per family: 2-, 3- and 4-option questions


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def answer(i: int, category: str, pred: str | None, skipped: str | None = None) -> Answer:
    """An answer to question ``i`` (right answer A) that the final mode read as ``pred``."""
    item = Item(str(i), "test", category, category, "question?", ("yes", "no"), "A")
    return Answer(item, 10, 5, None if skipped else "response", {"final": pred}, (), skipped)


def test_end_to_end_with_and_without_the_method(tiny, items, tmp_path):
    evaluation = evaluate(tiny, items, tmp_path, max_new_tokens=40, batch_size=4, direct=True, shifted=True,
                          progress=False)
    runs = evaluation.runs
    assert set(runs) == {"direct", "cot", "cot-shifted", "cot+emulation"}
    # The shifted baseline asks the same questions, each option one place on and the answer with it.
    for before, after in zip(runs["cot"], runs["cot-shifted"]):
        options = before.item.options
        assert after.id == before.id and after.item.options == (options[-1], *options[:-1])
        assert options[ord(before.item.answer) - 65] == after.item.options[ord(after.item.answer) - 65]
    del runs["cot-shifted"]
    assert [r.id for r in runs["cot"]] == [i.id for i in items]
    for record in runs["cot"]:
        assert 1 <= record.generated_tokens <= 40
        assert record.predictions["paper"] in ("A", "B", "C", "D")  # the paper's cascade always guesses
    summary = json.loads((tmp_path / "summary.json").read_text())
    # The summary's accuracy, against a count over the raw records' letters.
    cot = lines(tmp_path / "cot.jsonl")
    overall = next(r for r in summary["rows"] if (r["mode"], r["variant"], r["level"]) == ("final", "cot", "overall"))
    assert overall["accuracy"] == pytest.approx(sum(line["pred_final"] == line["answer"] for line in cot) / len(cot))
    assert {row["name"] for row in summary["rows"] if row["level"] == "category"} == {"stem", "social"}
    assert {row["variant"] for row in summary["rows"]} == {"direct", "cot", "cot-shifted", "cot+emulation"}
    assert all(row["difference"] is not None for row in summary["rows"] if row["variant"] == "cot-shifted")
    assert (tmp_path / "summary.csv").read_text().startswith("mode,variant,level,name")


def assert_same_answers(got, expected):
    """Equal records; the forced answer's probability, computed in batches padded otherwise, to
    float precision."""
    assert [dataclasses.replace(r, forced_probability=None) for r in got] == \
        [dataclasses.replace(r, forced_probability=None) for r in expected]
    assert [r.forced_probability for r in got] == pytest.approx([r.forced_probability for r in expected], abs=1e-4)


def test_resume_after_a_kill_loses_nothing_repeats_nothing(tiny, items, tmp_path, monkeypatch):
    settings = Settings(max_new_tokens=30)
    reference = run(tiny, items, tmp_path / "whole", variant="cot", settings=settings, batch_size=2, progress=False)
    real = runner.generate_stream
    monkeypatch.setattr(runner, "generate_stream", dies_after(4, real))
    with pytest.raises(KeyboardInterrupt):
        run(tiny, items, tmp_path / "killed", variant="cot", settings=settings, batch_size=2, progress=False)
    monkeypatch.setattr(runner, "generate_stream", real)
    path = tmp_path / "killed" / "cot.jsonl"
    assert len(lines(path)) == 4
    with path.open("a") as handle:
        handle.write('{"id": "half a line')  # a kill in the middle of a write
    resumed = run(tiny, items, tmp_path / "killed", variant="cot", settings=settings, batch_size=3, progress=False)
    assert_same_answers(resumed, reference)
    assert sorted(r["id"] for r in lines(path)) == sorted(i.id for i in items)  # every line whole, none twice


def test_resume_refuses_different_settings(tiny, items, tmp_path):
    run(tiny, items[:1], tmp_path, variant="cot", settings=Settings(max_new_tokens=3), progress=False)
    with pytest.raises(ValueError, match="different model or settings"):
        run(tiny, items[:1], tmp_path, variant="cot", settings=Settings(max_new_tokens=4), progress=False)


@pytest.mark.parametrize("spec", ["emulation", pytest.param("keep-anchors", marks=pytest.mark.slow)])
def test_batched_equals_one_at_a_time(tiny, items, tmp_path, spec):
    method = parse_method(spec)
    one = run(tiny, items, tmp_path / "one", variant="m", method=method,
              settings=Settings(max_new_tokens=40), batch_size=1, progress=False)
    many = run(tiny, items, tmp_path / "many", variant="m", method=method,
               settings=Settings(max_new_tokens=40), batch_size=5, progress=False)
    assert one == many


def test_sharded_results_merge_to_the_whole(tiny, items, tmp_path):
    for rank in range(2):
        run(tiny, items, tmp_path, variant="cot", settings=Settings(max_new_tokens=20),
            shard=runner.Shard(rank, 2), progress=False)
    merged = runner.read_results(runner.merge_shards(tmp_path, "cot", 2)).values()
    whole = run(tiny, items, tmp_path / "whole", variant="cot", settings=Settings(max_new_tokens=20), progress=False)
    assert_same_answers(sorted(merged, key=lambda r: r.id), sorted(whole, key=lambda r: r.id))


def test_the_real_benchmark_prompts_do_not_fit_stories260k(stories, tmp_path):
    if not SHARED.is_dir():
        pytest.skip("../shared/data not found")
    real = limit_per_subject(load_mmlu(SHARED / "mmlu", ["abstract_algebra", "world_religions"]), 2)
    real += load_piqa(SHARED / "piqa")[:2] + load_siqa(SHARED / "siqa")[:2]
    with pytest.raises(ValueError, match=r"exceed the model's context of 512 tokens \(the longest, piqa/0, has 755"):
        evaluate(stories, real, tmp_path, max_new_tokens=6, progress=False)
    runs = evaluate(stories, real, tmp_path, max_new_tokens=6, skip_over_context=True, progress=False).runs
    over = {i.id for i in real if len(stories.tokenizer(runner.prompt_for(i, Settings(), stories.tokenizer)).input_ids) + 6 > 512}
    assert {r.id for r in runs["cot"] if r.skipped} == over
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert {r["name"] for r in rows if r["level"] == "category"} == {"Humanities", "STEM", "PIQA", "SIQA"}
    assert next(r for r in rows if r["level"] == "overall")["skipped"] == len(over)


def test_mcnemar_and_bootstrap_against_hand_computation():
    baseline = [True] * 10 + [False] * 6 + [True] * 1
    method = [True] * 10 + [True] * 5 + [False] * 1 + [False] * 1
    # 5 pairs only the method gets right, 1 only the baseline: p = 2 * P(X <= 1 | 6, 1/2) = 2 * 7/64
    assert stats.mcnemar_exact(baseline, method) == pytest.approx(14 / 64)
    rows = stats.compare([answer(i, "c", "A" if b else "B") for i, b in enumerate(baseline)],
                         [answer(i, "c", "A" if m else "B") for i, m in enumerate(method)])
    overall = rows[0]
    assert overall["baseline"] == pytest.approx(11 / 17) and overall["method"] == pytest.approx(15 / 17)
    low, high = overall["difference_ci"]
    assert low < 4 / 17 < high


@pytest.mark.slow
def test_every_kind_of_method_end_to_end_from_the_command_line(tiny, tmp_path):
    methods = ["emulation:alpha=0.1", "emulation:alpha=0.3", "prompt-removal", "anchor-ablation", "keep-anchors:ratio=2"]
    code = main(["accuracy", "--model", str(shipped()), "--benchmark", "structured", "--limit", "3", "--max-new-tokens", "40",
                 "--batch-size", "4",
                 "--results", str(tmp_path / "results"), "--out", str(tmp_path / "report"), "--method", *methods])
    assert code == 0
    results = tmp_path / "results"
    summary = json.loads((results / "summary.json").read_text())
    variants = ["cot", "cot+emulation(alpha=0.1)", "cot+emulation(alpha=0.3)", "cot+prompt-removal",
                "cot+anchor-ablation", "cot+keep-anchors(ratio=2.0)"]
    assert list(summary["variants"]) == variants
    assert summary["variants"]["cot+emulation(alpha=0.3)"]["interventions"][0]["alpha"] == 0.3
    for variant in variants:
        records = lines(results / f"{variant}.jsonl")
        assert len(records) == 6 and all(r["response"] is not None for r in records)
        assert {f"pred_{m}" for m in ("final", "paper", "strict")} <= set(records[0])
    tokenizer = tiny.tokenizer
    for record in lines(results / "cot+keep-anchors(ratio=2.0).jsonl"):
        edit = record["interventions"][0]
        # The prompt range is the question's instruction, counted by the tokenizer on its own.
        assert edit["prompt_range"] == [0, len(tokenizer(instruction(len(record["options"]))).input_ids)]
        assert edit["keep_only"] and edit["anchors"] and all(0 <= a < edit["prompt_range"][1] for a in edit["anchors"])
    assert not lines(results / "cot+anchor-ablation.jsonl")[0]["interventions"][0]["keep_only"]
    assert lines(results / "cot+prompt-removal.jsonl")[0]["interventions"][0]["layers"] == [4, 6, 8]
    page = (tmp_path / "report" / "accuracy-structured.html").read_text()
    assert "emulation: overall accuracy (the model" in page and "forced answer) against alpha" in page  # the sweep
    assert "Responses to check by hand" in page


def test_rotated_options_move_the_answer_and_options_that_point_at_others_stay_put():
    item = Item("q", "test", "s", "s", "Which?", ("red", "green", "blue", "grey"), "B")
    once = item.rotated(1)
    assert once.options == ("grey", "red", "green", "blue") and once.answer == "C"
    assert item.rotated(4) == item and item.rotated(3).answer == "A"
    for option in ("All of the above", "none of these", "Both A and B", "A or C", "option D", "(a) and (b)"):
        pointing = Item("p", "test", "s", "s", "Which?", ("one", "two", option), "A")
        assert not pointing.permutable, option
    for option in ("Vitamin A", "I and II only", "a dog and a cat", "Answer a call", "I or a friend"):
        assert Item("k", "test", "s", "s", "Which?", ("one", option), "A").permutable, option


def test_letters_majority_baseline_and_rotation_against_a_hand_count():
    def rec(i, options, gold, said):
        return Answer(Item(str(i), "test", "s", "s", "?", options, gold), 10, 5, "r", {"final": said})

    four = ("w", "x", "y", "z")
    before = [rec(0, four, "A", "A"), rec(1, four, "A", "A"), rec(2, four, "B", "A"), rec(3, four, "C", None)]
    assert stats.letter_counts(before, "final") == {"A": 3, "B": 0, "C": 0, "D": 0, "none": 1}
    assert stats.letter_counts(before, None) == {"A": 2, "B": 1, "C": 1, "D": 0}
    assert stats.majority_baseline(before) == ("A", 0.5)
    assert stats.chance(before) == 0.25
    # Rotated one place: questions 0 and 1 keep letter A (now options z), question 2 follows its option to B.
    after = [rec(0, ("z", "w", "x", "y"), "B", "A"), rec(1, ("z", "w", "x", "y"), "B", "A"),
             rec(2, ("z", "w", "x", "y"), "C", "B"), rec(3, ("z", "w", "x", "y"), "D", "D")]
    moved = stats.rotation_agreement(before, after, "final")
    assert moved == {"n": 4, "accuracy_before": 0.5, "accuracy_after": 0.25, "same_option": 0.25, "same_letter": 0.5}
    gap = stats.reading_gap([rec(0, four, "A", "A"), rec(1, four, "B", None)], "final", against="final")
    assert gap == {"difference": 0.0, "filled": 0.0, "filled_right": 0.0, "differ": 0.0, "differ_written": 0.0}
    # Two readings that differ; the first response writes out the option "x" that paper read.
    one = Answer(Item("a", "test", "s", "s", "?", four, "B"), 10, 5, "So x it is. Response: A", {"final": "A", "paper": "B"})
    two = Answer(Item("b", "test", "s", "s", "?", four, "B"), 10, 5, "Response: A", {"final": "A", "paper": "B"})
    gap = stats.reading_gap([one, two], "paper")
    assert gap == {"difference": 1.0, "filled": 0.0, "filled_right": 0.0, "differ": 1.0, "differ_written": 0.5}


def test_parse_rates_and_accuracy_against_a_hand_count():
    records = [answer(0, "x", "A"), answer(1, "x", None), answer(2, "x", "B"), answer(3, "x", None),
               answer(4, "y", "A"), answer(5, "y", "A"), answer(6, "y", None, skipped="too long")]
    rows = {(r["level"], r["name"]): r for r in stats.accuracy(records, "final")}
    # x: 4 questions, 2 answered, 1 right; y: 2 counted (1 skipped), both answered and right.
    assert rows[("category", "x")]["parse_rate"] == 0.5 and rows[("category", "x")]["accuracy"] == 0.25
    assert rows[("category", "y")]["parse_rate"] == 1.0 and rows[("category", "y")]["skipped"] == 1
    assert rows[("overall", "all")]["n"] == 6 and rows[("overall", "all")]["parse_rate"] == pytest.approx(4 / 6)
    assert rows[("overall", "all")]["accuracy"] == pytest.approx(3 / 6)


def test_rescore_gives_the_summaries_of_a_fresh_run_with_the_same_extractor(tiny, items, tmp_path, monkeypatch):
    methods = [parse_method("emulation")]
    fresh = evaluate(tiny, items, tmp_path / "fresh", methods=methods, max_new_tokens=40, progress=False).runs
    # An older extractor that never found an answer wrote these records.
    monkeypatch.setattr(record_module, "extract_answer", lambda response, options, mode, benchmark=None: None)
    stale = evaluate(tiny, items, tmp_path / "stale", methods=methods, max_new_tokens=40, progress=False).runs
    assert all(r.predictions["final"] is None for r in stale["cot"])
    monkeypatch.undo()
    by_id = lambda runs: {name: sorted(records, key=lambda r: r.id) for name, records in runs.items()}  # noqa: E731
    assert by_id(rescore_folder(tmp_path / "stale").runs) == by_id(fresh)
    for name in ("summary.json", "summary.csv", "review.csv"):
        assert (tmp_path / "stale" / name).read_text() == (tmp_path / "fresh" / name).read_text(), name


def test_a_prompt_past_the_context_stops_the_run_before_it_generates(tiny, items, tmp_path):
    longest = max(len(tiny.tokenizer(runner.prompt_for(i, runner.Settings(), tiny.tokenizer)).input_ids) for i in items)
    with pytest.raises(ValueError, match=rf"context of 512 tokens .*has {longest} tokens.*at most {512 - longest}"):
        evaluate(tiny, items, tmp_path, max_new_tokens=600, progress=False)
    assert not (tmp_path / "cot.jsonl").exists()  # nothing generated, nothing written
    runs = evaluate(tiny, items, tmp_path, max_new_tokens=600, skip_over_context=True, progress=False).runs
    assert all(r.skipped and r.response is None for r in runs["cot"])
    overall = next(r for r in json.loads((tmp_path / "summary.json").read_text())["rows"] if r["level"] == "overall")
    assert overall["skipped"] == len(items) and overall["n"] == 0


def test_pasta_emphasises_the_instruction_or_the_question_as_span_says(tiny, items, tmp_path):
    tokenizer = tiny.tokenizer
    heads = tmp_path / "heads.json"
    heads.write_text('{"1": [0, 2]}')
    for item in items[:2]:
        prompt = runner.prompt_of(tiny, item, Settings())
        ids = prompt.ids
        steered = {span: runner.plan(tiny, parse_method(f"pasta:heads={heads},span={span}"), prompt)
                   .interventions[0].span for span in ("instruction", "question")}
        assert tokenizer.decode(ids[slice(*steered["instruction"])], skip_special_tokens=True).strip() == \
            instruction(len(item.options)).strip()  # the range starts at the BOS, as it does everywhere
        question = tokenizer.decode(ids[slice(*steered["question"])])
        assert steered["question"][0] == steered["instruction"][1] and question.strip().startswith(item.question[:20])
        assert question.rstrip().endswith(item.options[-1]) and "Analysis" not in question
    with pytest.raises(UsageError, match="span='answer'; choose instruction or question"):
        parse_method("pasta:heads=auto,span=answer")


@pytest.mark.parametrize("spec, message", [
    ("emulation:threshold=1.5", "threshold=1.5 is outside (0, 1)"),
    ("emulation:alpha=-3", "alpha=-3.0 makes the factor"),
    ("emulation:gamma=1", "'gamma=1' is not a parameter"),
    ("dropout", "unknown method 'dropout'"),
])
def test_bad_method_parameters_exit_2_with_a_message_and_no_traceback(spec, message, tmp_path, capsys):
    code = main(["accuracy", "--model", str(shipped()), "--benchmark", "structured", "--limit", "1", "--max-new-tokens", "40",
                 "--results", str(tmp_path),
                 "--method", spec])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.jsonl"))


def peak_cache_bytes(model, rows, limits, batch_size) -> int:
    """The most bytes the KV cache's tensors held at once while ``generate_stream`` ran ``rows``
    (every distinct storage of every live layer, and whatever a layer holds while it replaces its
    buffers), measured on the tensors themselves."""
    import weakref

    from interp.decoding.generation import GrowingLayer, generate_stream

    live: weakref.WeakSet = weakref.WeakSet()
    peak = 0
    real_set = GrowingLayer.set

    def held(extra=()) -> int:
        storages = {}
        for layer in live:
            for t in (getattr(layer, "_keys", None), getattr(layer, "_values", None)):
                if t is not None:
                    storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        for t in extra:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return sum(storages.values())

    def measured_set(self, keys, values, room=0):
        nonlocal peak
        live.add(self)
        old = [t for t in (getattr(self, "_keys", None), getattr(self, "_values", None)) if t is not None]
        real_set(self, keys, values, room)
        peak = max(peak, held([*old, keys, values]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GrowingLayer, "set", measured_set)
        for _ in generate_stream(model, rows, max_new_tokens=limits, batch_size=batch_size, eos_token_id=10_000):
            pass
    return peak


def test_auto_batch_size_covers_the_bytes_the_cache_really_holds(sp_model):
    """--batch-size auto's bytes per row, against the KV cache's own tensors measured while
    continuous batching runs prompts of mixed lengths that stop at mixed lengths."""
    import random

    from interp.accuracy.memory import fit_batch
    from interp.tiny import random_llama

    model = load_model(random_llama(n_layers=3, d_model=64, n_heads=4, n_kv_heads=2, vocab_size=400), tokenizer=sp_model)
    rng = random.Random(0)
    longest, most_new, batch = 60, 80, 4
    rows = [[rng.randrange(3, 400) for _ in range(rng.randint(5, longest))] for _ in range(12)]
    limits = [rng.randint(1, most_new) for _ in rows]
    measured = peak_cache_bytes(model, rows, limits, batch)
    fit = fit_batch(model, max(map(len, rows)), most_new, n_rows=batch, free_bytes=10**12)
    kv_bytes = fit.bytes_per_row - fit.prefill_bytes_per_row
    # The plain count (prompt + new tokens per row) that the estimate used to be falls short.
    plain = 2 * 3 * 2 * 16 * 4 * (max(map(len, rows)) + most_new) * batch
    assert plain < measured <= batch * kv_bytes, (plain, measured, batch * kv_bytes)
    assert batch * kv_bytes < 2.5 * measured  # an upper bound, not a wild one
    assert fit_batch(model, 100, 50, n_rows=5, free_bytes=10**9).batch_size == 5
    with pytest.raises(ValueError, match="even one row needs"):
        fit_batch(model, 100, 50, n_rows=5, free_bytes=100_000)


@pytest.mark.slow
def test_out_of_memory_halves_the_batch_and_loses_and_repeats_nothing(tiny, items, tmp_path, monkeypatch, capsys):
    import torch

    settings = Settings(max_new_tokens=30)
    reference = run(tiny, items, tmp_path / "reference", variant="cot", settings=settings, batch_size=1, progress=False)
    real, sizes = runner.generate_stream, []

    def short_of_memory(model, rows, *, batch_size, **kwargs):
        # A device that holds two rows at most: with more, one answer comes out, then memory runs out.
        sizes.append((len(rows), batch_size))
        for n, answer in enumerate(real(model, rows, batch_size=batch_size, **kwargs)):
            if batch_size > 2 and n == 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            yield answer

    monkeypatch.setattr(runner, "generate_stream", short_of_memory)
    got = run(tiny, items, tmp_path / "tight", variant="cot", settings=settings, batch_size=8, progress=False)
    assert_same_answers(got, reference)
    # all 6 questions at 8 rows (1 answered), the other 5 at 4 (1 answered), the last 4 at 2
    assert sizes == [(6, 8), (5, 4), (4, 2)]
    assert "batch size halved to 4" in capsys.readouterr().out
    assert sorted(r["id"] for r in lines(tmp_path / "tight" / "cot.jsonl")) == sorted(i.id for i in items)


def test_a_second_method_run_into_a_folder_keeps_the_first_runs_variants_in_the_summary(tiny, items, tmp_path):
    few = items[:4]
    evaluate(tiny, few, tmp_path, methods=[parse_method("emulation")], max_new_tokens=8, progress=False)
    second = evaluate(tiny, few, tmp_path, methods=[parse_method("prompt-removal")], max_new_tokens=8, progress=False)
    variants = {row["variant"] for row in json.loads((tmp_path / "summary.json").read_text())["rows"]}
    assert variants == {"cot", "cot+emulation", "cot+prompt-removal"} == set(second.runs)


def test_a_method_of_ones_own_rescores_only_when_given_and_a_refusal_rewrites_nothing(tiny, items, tmp_path):
    """A FixedMethod of one's own intervention runs; --rescore with the model cannot rebuild it from
    its settings file, so it refuses before rewriting any variant (the baseline included); given
    the method, the forced answers come back as the run computed them."""
    import interp
    from interp.accuracy.methods import FixedMethod
    from interp.validation import UsageError

    mine = FixedMethod((interp.PromptRangeRemoval((0, 20), layers=(1, 2)),), "my-removal")
    fresh = evaluate(tiny, items[:3], tmp_path, methods=[mine], max_new_tokens=12, batch_size=4, progress=False).runs
    files = {path.name: path.read_bytes() for path in tmp_path.glob("*.jsonl")}
    with pytest.raises(UsageError, match="cot\\+my-removal.*kind 'fixed'.*nothing was rewritten.*methods="):
        rescore_folder(tmp_path, tiny)
    assert {path.name: path.read_bytes() for path in tmp_path.glob("*.jsonl")} == files
    rescored = rescore_folder(tmp_path, tiny, methods={"cot+my-removal": mine}).runs
    for name in fresh:
        assert [r.predictions["forced"] for r in rescored[name]] == [r.predictions["forced"] for r in fresh[name]]
        assert [r.forced_probability for r in rescored[name]] == pytest.approx(
            [r.forced_probability for r in fresh[name]], abs=1e-5)


def test_a_registered_method_is_named_like_the_shipped_ones_and_rescores_from_its_record(tiny, items, tmp_path,
                                                                                        monkeypatch):
    import interp
    from interp.accuracy import methods
    from interp.accuracy.methods import FixedMethod, register_method

    monkeypatch.setattr(methods, "KINDS", dict(methods.KINDS))
    register_method("my-removal", lambda p: FixedMethod((interp.PromptRangeRemoval((0, 20), layers=(1, p["last"])),), ""),
                    {"last": int})
    with pytest.raises(ValueError, match="already registered"):
        register_method("my-removal", lambda p: None)
    with pytest.raises(UsageError, match="my-removal.*last='x' is not a valid int"):
        parse_method("my-removal:last=x")
    fresh = evaluate(tiny, items[:2], tmp_path, methods=[parse_method("my-removal:last=2")], max_new_tokens=8,
                     progress=False).runs
    assert json.loads((tmp_path / "cot+my-removal(last=2).settings.json").read_text())["method"]["kind"] == "my-removal"
    rescored = rescore_folder(tmp_path, tiny).runs  # no methods=: the record names a registered kind
    for name in fresh:
        assert [r.forced_probability for r in rescored[name]] == pytest.approx(
            [r.forced_probability for r in fresh[name]], abs=1e-5)


def test_a_package_registers_its_methods_by_entry_point(tmp_path, monkeypatch):
    from interp.accuracy import methods

    monkeypatch.setattr(methods, "KINDS", dict(methods.KINDS))
    (tmp_path / "my_methods.py").write_text(
        "from interp.accuracy.methods import FixedMethod, register_method\n"
        "from interp.edits.interventions import TopLayerEmulation\n"
        "register_method('strong-emulation', lambda p: FixedMethod((TopLayerEmulation(alpha=p.get('alpha', 1.0)),), ''),"
        " {'alpha': float})\n")
    info = tmp_path / "my_methods-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-methods\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[interp.methods]\nmine = my_methods\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    method = parse_method("strong-emulation:alpha=0.5")
    assert method.kind == "strong-emulation" and method.fixed[0].alpha == 0.5



def test_results_print_short():
    from interp.accuracy.harness import Evaluation, summarise

    records = [answer(i, "x", "A" if i < 3 else "B") for i in range(4)]
    assert repr(records[3]) == "Answer(3: right A; final B; 5 tokens)"
    runs = {"cot": records}
    assert repr(Evaluation(runs, summarise(runs))) == "Evaluation(4 questions, accuracy by final: cot 75.0%)"
