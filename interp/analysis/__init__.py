"""What attention does: per-layer patterns and entropy, anchors, effects of edits, heads."""
