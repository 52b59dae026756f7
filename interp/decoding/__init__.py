"""Decoding: batched, KV-cached greedy generation with an edit plan applied at every step."""

DEFAULT_BATCH_SIZE = 8  # rows decoding together; results do not depend on it
