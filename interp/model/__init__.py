"""Loading a model into its handle: sources, GGUF and llama2.c conversion, chat templates, the plain
model's edited attention (the fast path that :mod:`interp.decoding` decodes with)."""
