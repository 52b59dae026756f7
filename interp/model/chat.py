"""Chat templates: a user turn written the way the model's own tokenizer writes it, and templated
text turned into the tokens the model was trained on."""

from __future__ import annotations

import os
import resource
import select
import signal
from typing import Any

from interp.model.load import adds_bos


JOINER = "\u2060"  # WORD JOINER: invisible, and no tokenizer's special token contains it


def literal(tokenizer: Any, text: str) -> str:
    """``text`` from a data file with every special token's text in it (``<|im_end|>``, ``</s>``)
    broken by an invisible word joiner after its first character: tokenizers match special tokens
    as strings anywhere in the input, so a data row could otherwise end the user's turn or the
    sequence. Text without such strings is returned as it is."""
    for token in sorted(getattr(tokenizer, "all_special_tokens", None) or [], key=len, reverse=True):
        if len(token) > 1 and token in text:
            text = text.replace(token, token[0] + JOINER + token[1:])
    return text


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
    if str(tokenizer.chat_template) not in _checked:
        _check_renders(tokenizer, text)
        _checked.add(str(tokenizer.chat_template))
    return _render(tokenizer, text)


def _render(tokenizer: Any, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


_checked: set[str] = set()  # templates that rendered within bounds, once per process
RENDER_SECONDS = 10
RENDER_BYTES = 1 << 30


def _check_renders(tokenizer: Any, text: str) -> None:
    """Render one turn in a forked child under a time and memory bound before this process renders
    any: a template (it comes with the model's files, and Jinja has loops) that runs for ever or
    grows without end is refused, where rendering it here would hang the run."""
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: render once, report the length, leave without cleanup
        os.close(read)
        try:
            used = _used_bytes()
            if used is not None:
                resource.setrlimit(resource.RLIMIT_AS, (RENDER_BYTES + used,) * 2)
            length = len(_render(tokenizer, text))
            os.write(write, str(length).encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], RENDER_SECONDS)
    answer = os.read(read, 64).decode() if ready else ""
    os.close(read)
    if not ready:
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    if not answer.isdigit() or int(answer) > len(text) + 100_000:
        why = f"ran for more than {RENDER_SECONDS} s" if not ready else \
            "failed or needed more than 1 GB" if not answer.isdigit() else f"wrote {int(answer)} characters"
        raise ValueError(f"this model's chat template {why} for one user turn of {len(text)} characters; its "
                         "tokenizer_config.json (or chat_template.jinja) is broken or hostile: leave out --chat, or "
                         "give a tokenizer whose template writes a turn")


def _used_bytes() -> int | None:
    """This process's address space; ``None`` where there is no /proc to read it (macOS): the
    child then has the time bound only."""
    try:
        with open("/proc/self/statm") as handle:  # size of the address space in pages
            return int(handle.read().split()[0]) * resource.getpagesize()
    except OSError:
        return None


def encode(tokenizer: Any, text: str) -> list[int]:
    """The token ids of ``text`` as the model reads it. A template that writes the BOS token as text
    (LLaMA-2's ``<s>[INST]``) is tokenized as the model's own code does it: BOS added by the
    tokenizer, the rest as text after it (``▁[INST]``, not ``[INST]`` glued to ``<s>``)."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and adds_bos(tokenizer):
        text = text[len(bos):]
    return tokenizer(text).input_ids
