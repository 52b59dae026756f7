"""The paper's emulation beside the training-free attention methods of the same years, on one example."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from interp.accuracy.loglik import references, selection_items
from interp.accuracy.structured import BENCHMARK
from interp.analysis.attention import attention_patterns
from interp.analysis.effects import intervention_effects
from interp.analysis.selection import Reference, select_heads
from interp.edits.intervention import PatternIntervention
from interp.edits.interventions import (
    AttentionSteering, AttentionTemperature, SinkCalibration, SinkScaling, SinkWindow, TopLayerEmulation,
)
from interp.report import figures
from interp.report.page import Page, Section
from interp.studies.base import Context, Example, continuation_note, effects_table, variants_record

if TYPE_CHECKING:
    from interp.model.load import InterpModel

SELECTION_EXAMPLES = 6  # held-out structured questions the page selects ACT's and PASTA's heads on
SELECTED = 2  # heads confirmed exactly for each


def _heads(model: InterpModel, kind: str, refs: list[Reference]) -> tuple[dict[int, list[int]], str]:
    """The heads a method edits on this page, chosen by :func:`select_heads` on held-out
    questions (the best confirmed head when none is confirmed to help), and how they were chosen."""
    selection = select_heads(model, kind, refs, SELECTED, progress=False)
    heads = selection.heads
    if not heads:  # none confirmed to help: the best confirmed one, to show what the edit does
        layer, head = min(selection.confirmed, key=lambda h: float(selection.exact[h]))
        heads = {layer: [head]}
    shown = ", ".join(f"{layer}.{head}" for layer, chosen in heads.items() for head in chosen)
    return heads, f"{kind}: heads {shown} ({selection.seconds['estimate'] + selection.seconds['confirm']:.1f} s)"


def variants(model: InterpModel, example: Example) -> tuple[dict[str, list[PatternIntervention]], list[str]]:
    """Each method at its paper's defaults, and how the head-choosing ones chose their heads."""
    refs = references(model, selection_items(BENCHMARK, None, SELECTION_EXAMPLES))
    act_heads, act_note = _heads(model, "act", refs)
    pasta_heads, pasta_note = _heads(model, "pasta", refs)
    stop = example.answer_start or example.ids.shape[1]
    return {
        "original": [],
        "top-layer emulation (the paper)": [TopLayerEmulation()],
        "ACT sink calibration": [SinkCalibration(act_heads)],
        "PASTA steering to the prompt": [AttentionSteering((0, example.prompt_stop), pasta_heads, input_length=stop)],
        "ZeroTuning sink scaling, gamma 0.6": [SinkScaling(0.6)],
        "attention temperature 1.2": [AttentionTemperature(1.2)],
        "StreamingLLM window (4 sinks, 64 recent)": [SinkWindow(4, 64)],
    }, [act_note, pasta_note]


def methods_study(model: InterpModel, example: Example, max_new_tokens: int = 32) -> Page:
    """Every method's effect on the example's dialogue, and one edited head's pattern under each."""
    chosen, notes = variants(model, example)
    effects = intervention_effects(model, example.ids, example.prompt_stop, chosen, max_new_tokens=max_new_tokens,
                                   generate_from=example.answer_start)
    layer, head = next((l, hs[0]) for l, hs in chosen["ACT sink calibration"][0].heads if hs)
    patterns = torch.stack([attention_patterns(model, example.ids, ivs)[layer, head] for ivs in chosen.values()])
    rows = sorted(effects[1:], key=lambda e: -e.kl)
    return Page("methods.html", "Methods compared",
                f"KL from the original: {', '.join(f'{e.name} {e.kl:.3f}' for e in rows[:3])}", [
        Section("Effects on the dialogue",
                "Each method at its paper's defaults, in every layer (ACT and PASTA in the heads chosen for them "
                f"by interp.select_heads on {SELECTION_EXAMPLES} held-out structured questions, the {SELECTED} "
                "estimated best confirmed exactly: " + "; ".join(notes) + "). " + continuation_note(example),
                tables=[effects_table(effects)], preformatted=variants_record(chosen)),
        Section(f"Head {layer}.{head} under each method",
                f"The pattern of head {layer}.{head} (one of ACT's) on the example: the paper's emulation scales "
                "the entries layer 0 selects without renormalising (rows sum above one); ACT moves mass from sinks "
                "other than the first to the rest of the row; PASTA (where this head is one of its) leaves the "
                "prompt's keys their weight and shrinks the others'; ZeroTuning scales the first token's column; "
                "a temperature above 1 flattens every row; the window keeps the first 4 keys and the last 64.",
                figures=[figures.layer_heatmaps(patterns, example.tokens, f"Head {layer}.{head}", example.prompt_stop,
                                                layer_names=list(chosen),
                                                cells=figures.SLIDER_CELLS // 4)]),  # small: the main job's folder
    ])


def run(c: Context) -> Page:
    return methods_study(c.model, c.example, c.config.max_new_tokens)
