"""interp: attention interventions on LLaMA models in TransformerLens.

Reproduces and extends "Extending Token Computation for LLM Reasoning" (Liao & Vargas, 2024).
"""

from interp.anchors import Anchors, detect_anchors
from interp.generation import generate
from interp.interventions import (
    AnchorAblation,
    PromptRangeRemoval,
    TopLayerEmulation,
    alternating_layers,
    describe,
    intervene,
)
from interp.models import InterpModel, ModelLoadError, load_model

__all__ = [
    "AnchorAblation", "Anchors", "InterpModel", "ModelLoadError", "PromptRangeRemoval", "TopLayerEmulation",
    "alternating_layers", "describe", "detect_anchors", "generate", "intervene", "load_model",
]
