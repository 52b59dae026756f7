"""Small LLaMA-architecture models and tokenizers built locally (no downloads)."""

from interp.tiny.random_model import random_llama
from interp.tiny.tokenizer import train_sentencepiece

__all__ = ["random_llama", "train_sentencepiece"]
