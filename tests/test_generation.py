from __future__ import annotations

import pytest
import torch

import interp
from interp.decoding import generation

PROMPTS = ["Once upon a time", "Tom and Lily went to the park. They saw a dog.", "The cat"]


@pytest.mark.parametrize("interventions", [
    (),
    (interp.TopLayerEmulation(),),
    (interp.PromptRangeRemoval((1, 3), layers=(1, 3)),),
    (interp.AnchorAblation((0, 3), anchors=(0,), keep_only=True),),
])
def test_batched_equals_one_at_a_time(stories, interventions):
    batched = interp.generate(stories, PROMPTS, max_new_tokens=24, interventions=interventions)
    alone = [interp.generate(stories, p, max_new_tokens=24, interventions=interventions) for p in PROMPTS]
    assert batched == alone
    assert len(set(batched)) == 3


def test_rows_stop_at_eos_and_are_padded_with_it(stories):
    period = stories.tokenizer.convert_tokens_to_ids(".")
    ids = torch.tensor([stories.tokenizer("Once upon a time").input_ids])
    new = interp.generate(stories, ids.repeat(2, 1), max_new_tokens=30, eos_token_id=period)
    assert new.shape == (2, 30) and new.dtype == torch.long
    first = new[0].tolist().index(period)
    assert first < 29 and (new[:, first:] == period).all()
    assert interp.generate(stories, "Once upon a time", max_new_tokens=30, eos_token_id=period) == \
        ", there was a little girl named Lily"


def test_interventions_change_generation_and_are_removed_afterwards(stories):
    plain = interp.generate(stories, PROMPTS[1], max_new_tokens=24)
    edited = interp.generate(stories, PROMPTS[1], max_new_tokens=24,
                             interventions=[interp.PromptRangeRemoval((0, 12), layers=(0, 1, 2, 3, 4))])
    assert edited != plain
    assert interp.generate(stories, PROMPTS[1], max_new_tokens=24) == plain


def test_bad_generation_arguments(stories):
    with pytest.raises(ValueError, match="empty prompt"):
        interp.generate(stories, "", max_new_tokens=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        interp.generate(stories, "Hi", max_new_tokens=0)


def test_rows_that_stop_early_leave_the_batch_without_changing_the_others(stories):
    period = stories.tokenizer.convert_tokens_to_ids(".")
    method = [interp.TopLayerEmulation()]
    batched = interp.generate(stories, PROMPTS, max_new_tokens=40, eos_token_id=period, interventions=method)
    alone = [interp.generate(stories, p, max_new_tokens=40, eos_token_id=period, interventions=method) for p in PROMPTS]
    assert batched == alone
    assert len({len(text) for text in batched}) == 3  # the rows stopped at different steps


STORY_PROMPTS = [
    "Once", "Tom had a big red ball. He liked to throw it high. One day the ball went over the fence and",
    "The cat", "Lily saw a bird.", "A little boy named Tim lived in a small house near the woods. Every morning",
    "Sue and Max", "The sun was hot and the children wanted to swim in the lake, so their mom said",
    "Ben found a", "One day, a dog",
]


@pytest.mark.parametrize("interventions", [
    (),
    (interp.TopLayerEmulation(),),
    (interp.PromptRangeRemoval((1, 3), layers=(1, 3)),),
    (interp.AnchorAblation((0, 3), anchors=(0,), keep_only=False),),
])
def test_kept_full_batches_equal_one_at_a_time(stories, interventions):
    """Rows of very different lengths, three decoding at once: each one that ends (at '.') gives
    its slot to the next waiting prompt, prefilled and joined to the running batch."""
    period = stories.tokenizer.convert_tokens_to_ids(".")
    rows = generation.tokenize(stories, STORY_PROMPTS)
    order = []
    streamed = {}
    for index, new in generation.generate_stream(stories, rows, max_new_tokens=40, batch_size=3,
                                                 interventions=interventions, eos_token_id=period):
        order.append(index)
        streamed[index] = new
    alone = [generation.generate_ids(stories, torch.tensor([row]), max_new_tokens=40, interventions=interventions,
                                     eos_token_id=period)[0] for row in rows]
    assert sorted(order) == list(range(len(rows)))
    assert all(torch.equal(streamed[i], alone[i]) for i in range(len(rows)))
    lengths = [new.tolist().index(period) if period in new else 40 for new in alone]
    assert len(set(lengths)) > 3 and order != sorted(order)  # rows ended at different steps and were refilled


def test_rows_ending_on_their_first_token_free_their_slot_at_once(stories):
    rows = generation.tokenize(stories, STORY_PROMPTS)
    first = int(generation.generate_ids(stories, torch.tensor([rows[4]]), max_new_tokens=1)[0, 0])
    streamed = dict(generation.generate_stream(stories, rows, max_new_tokens=12, batch_size=2, eos_token_id=first))
    alone = [generation.generate_ids(stories, torch.tensor([row]), max_new_tokens=12, eos_token_id=first)[0] for row in rows]
    assert int(streamed[4][0]) == first
    assert all(torch.equal(streamed[i], alone[i]) for i in range(len(rows)))
