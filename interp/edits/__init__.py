"""The attention edits: pure functions on patterns, and the interventions that apply them."""
