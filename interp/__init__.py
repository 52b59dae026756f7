"""interp: attention interventions on LLaMA models in TransformerLens.

Reproduces and extends "Extending Token Computation for LLM Reasoning" (Liao & Vargas, 2024).
"""

from interp.analysis.anchors import Anchors, detect_anchors
from interp.decoding.generation import generate
from interp.edits.intervention import Intervention, PatternIntervention, describe, queries_from, row_left_pad
from interp.edits.interventions import AnchorAblation, HeadAblation, PromptRangeRemoval, TopLayerEmulation, alternating_layers
from interp.edits.plan import EditPlan, intervene, plan_edits
from interp.model.load import InterpModel, ModelLoadError, load_model

__all__ = [
    "AnchorAblation", "Anchors", "EditPlan", "HeadAblation", "InterpModel", "Intervention", "ModelLoadError",
    "PatternIntervention", "PromptRangeRemoval", "TopLayerEmulation", "alternating_layers", "describe",
    "detect_anchors", "generate", "intervene", "load_model", "plan_edits", "queries_from", "row_left_pad",
]
