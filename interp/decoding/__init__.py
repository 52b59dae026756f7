"""Decoding: batched, KV-cached greedy generation with an edit plan applied at every step."""
