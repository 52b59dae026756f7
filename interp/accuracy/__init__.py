"""CoT accuracy on multiple-choice benchmarks: prompts, answer extraction, data loaders, the harness and its records, statistics, and interp as an lm-evaluation-harness model."""

from interp.accuracy.extraction import MODES, extract_answer

__all__ = ["MODES", "extract_answer"]
