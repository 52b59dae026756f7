"""The README's own-intervention example, run as written: on a left-padded batch, through the
bridge and on the fast path with the KV cache, it matches the reference attention's removal of
each row's first key (tests/reference.py, no interp code)."""

import re
from pathlib import Path

import pytest
import torch

import interp
from interp.decoding.generation import generate_ids, padded_batch
from tests import reference
from tests.reference import reference_greedy

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_class():
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "DropFirstKey" in b)
    namespace: dict = {}
    exec(block.split("\ninterp.generate(")[0], namespace)  # the class; the last line needs a real model
    return namespace["DropFirstKey"]


def test_the_readme_intervention_is_right_under_padding_and_the_kv_cache(tiny_models):
    ref, model = tiny_models(4)
    drop = readme_class()((1, 3))
    assert isinstance(drop, interp.PatternIntervention)
    rows = [[5, 17, 33, 9, 41, 8, 12], [7, 3, 19]]
    ids, left_pad, mask, positions = padded_batch(rows, 0)
    # Set in place: other modules hold this same object (rebinding it would leave them a stale one).
    for name, value in vars(reference.Edit(kind="remove", prompt_range=(0, 1), layers=(1, 3),
                                           left_pad=left_pad.tolist())).items():
        setattr(reference.EDIT, name, value)
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask, position_ids=positions).logits
        with interp.intervene(model, drop, left_pad=left_pad):
            bridge = model(ids, attention_mask=mask, position_ids=positions)
    real = mask.bool()
    assert (bridge - expected)[real].abs().max() < 1e-4
    new = generate_ids(model, ids, max_new_tokens=8, left_pad=left_pad, interventions=[drop], eos_token_id=-1)
    assert torch.equal(new, reference_greedy(ref, ids, left_pad.tolist(), 8))
    with torch.no_grad():
        assert not torch.equal(bridge, model(ids, attention_mask=mask, position_ids=positions))  # it acted


def test_a_value_that_is_no_intervention_is_refused_naming_the_fix(tiny_models):
    _, model = tiny_models(4)

    class Duck:
        def hooks(self, n_layers, left_pad=None):
            return []

    with pytest.raises(TypeError, match="subclass interp.PatternIntervention"):
        interp.plan_edits(model, Duck())

