"""Chat templates: a user turn written the way the model's own tokenizer writes it, and templated
text turned into the tokens the model was trained on."""

from __future__ import annotations

from typing import Any

from interp.model.load import adds_bos


def has_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def user_turn(tokenizer: Any, text: str) -> str:
    """``text`` as the user's turn of the tokenizer's chat template, ending where the assistant's
    answer begins (SmolLM2: ``<|im_start|>system ... <|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>assistant\\n``;
    LLaMA-2-chat: ``<s>[INST] {text} [/INST]``)."""
    if not has_template(tokenizer):
        raise ValueError("this model's tokenizer has no chat template (tokenizer_config.json or chat_template.jinja), "
                         "so there is no chat format to write prompts in; leave out --chat, or give a tokenizer that "
                         "has one")
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def encode(tokenizer: Any, text: str) -> list[int]:
    """The token ids of ``text`` as the model reads it. A template that writes the BOS token as text
    (LLaMA-2's ``<s>[INST]``) is tokenized as the model's own code does it: BOS added by the
    tokenizer, the rest as text after it (``▁[INST]``, not ``[INST]`` glued to ``<s>``)."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and adds_bos(tokenizer):
        text = text[len(bos):]
    return tokenizer(text).input_ids
