"""interp: attention interventions on LLaMA models in TransformerLens.

Reproduces and extends "Extending Token Computation for LLM Reasoning" (Liao & Vargas, 2024).
"""

from interp.analysis.anchors import Anchors, detect_anchors
from interp.model.generation import generate
from interp.edits.interventions import (
    AnchorAblation,
    PromptRangeRemoval,
    TopLayerEmulation,
    alternating_layers,
    describe,
    intervene,
)
from interp.model.load import InterpModel, ModelLoadError, load_model

__all__ = [
    "AnchorAblation", "Anchors", "InterpModel", "ModelLoadError", "PromptRangeRemoval", "TopLayerEmulation",
    "alternating_layers", "describe", "detect_anchors", "generate", "intervene", "load_model",
]
