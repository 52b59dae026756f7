"""Multiple-choice benchmarks: prompts, answer extraction, data loaders and the accuracy harness."""
