"""Small models and tokenizers built locally (no downloads)."""

from interp.tiny.random_model import ARCHITECTURES, random_decoder, random_llama
from interp.tiny.tokenizer import train_sentencepiece

__all__ = ["ARCHITECTURES", "random_decoder", "random_llama", "train_sentencepiece"]
