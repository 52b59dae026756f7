"""Multiple-choice benchmarks: prompts, answer extraction, data loaders and the accuracy harness."""

from interp.benchmarks.extraction import MODES, extract_answer

__all__ = ["MODES", "extract_answer"]
