"""interp: attention interventions on LLaMA models in TransformerLens.

Reproduces and extends "Extending Token Computation for LLM Reasoning" (Liao & Vargas, 2024).
The names below are what a script needs (the README's API section lists them); each is imported
the first time it is used, so that ``import interp`` and ``interp --help`` cost no torch import.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_HOMES = {
    # loading
    "load_model": "interp.model.load", "InterpModel": "interp.model.load", "ModelLoadError": "interp.model.load",
    "load_default": "interp.shipped", "default_example": "interp.shipped",
    # a prompt and its ranges, from text
    "Example": "interp.studies.base", "prefix_length": "interp.decoding.generation",
    # interventions
    "Intervention": "interp.edits.intervention", "PatternIntervention": "interp.edits.intervention",
    "describe": "interp.edits.intervention", "queries_from": "interp.edits.intervention",
    "row_left_pad": "interp.edits.intervention",
    "AnchorAblation": "interp.edits.interventions", "HeadAblation": "interp.edits.interventions",
    "PromptRangeRemoval": "interp.edits.interventions", "TopLayerEmulation": "interp.edits.interventions",
    "PerRow": "interp.edits.interventions", "alternating_layers": "interp.edits.interventions",
    "AttentionTemperature": "interp.edits.interventions", "SinkScaling": "interp.edits.interventions",
    "SinkWindow": "interp.edits.interventions", "SinkCalibration": "interp.edits.interventions",
    "AttentionSteering": "interp.edits.interventions",
    "EditPlan": "interp.edits.plan", "intervene": "interp.edits.plan", "plan_edits": "interp.edits.plan",
    # generation
    "generate": "interp.decoding.generation",
    # analysis
    "attention_patterns": "interp.analysis.attention", "attention_entropy": "interp.analysis.attention",
    "Anchors": "interp.analysis.anchors", "detect_anchors": "interp.analysis.anchors",
    "received_attention": "interp.analysis.anchors",
    "Effect": "interp.analysis.effects", "intervention_effects": "interp.analysis.effects",
    "dialogue_loss": "interp.analysis.effects",
    "HeadScores": "interp.analysis.heads", "head_scores": "interp.analysis.heads",
    "attribution_effects": "interp.analysis.heads", "ablation_effects": "interp.analysis.heads",
    "activation_patching": "interp.analysis.patching", "attribution_patching": "interp.analysis.patching",
    "logit_difference": "interp.analysis.patching",
    "select_heads": "interp.analysis.selection", "HeadSelection": "interp.analysis.selection",
    "Reference": "interp.analysis.selection", "references": "interp.accuracy.loglik",
    # accuracy
    "evaluate": "interp.accuracy.harness", "rescore_folder": "interp.accuracy.harness",
    "parse_method": "interp.accuracy.methods", "register_method": "interp.accuracy.methods",
    "FixedMethod": "interp.accuracy.methods", "extract_answer": "interp.accuracy.extraction",
}
_MODULES = {"figures": "interp.report.figures"}

__all__ = sorted([*_HOMES, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif importlib.util.find_spec(f"interp.{name}") is not None:  # a subpackage: interp.edits, interp.accuracy
        return importlib.import_module(f"interp.{name}")
    else:
        raise AttributeError(f"module 'interp' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
