"""LLaMA-2-sized reports (32 layers x 32 heads, a prompt of several hundred tokens) stay light."""

from __future__ import annotations

import pytest

import interp
from interp.report.page import write_page
from interp.studies.base import Example
from interp.analysis.anchors import detect_anchors
from interp.studies.anchors import anchor_study
from interp.studies.attention import attention_study
from interp.tiny import random_llama

pytestmark = pytest.mark.slow  # a 32-layer, 32-head model's pages

LIMIT_MB = 4  # a page without plotly.js, which lies beside it (4.8 MB, once per folder)


@pytest.fixture(scope="module")
def wide(sp_model):
    hf = random_llama(n_layers=32, d_model=128, n_heads=32, vocab_size=400, init_std=0.2, seed=5)
    return interp.load_model(hf, tokenizer=sp_model)


def test_pages_for_a_32_layer_32_head_model_and_a_long_prompt_stay_small(wide, tmp_path):
    prompt = "Question: Ann has a red hat. " * 40
    example = Example.from_text(wide, prompt, "Analysis: Ann has it.\nResponse: (A)")
    assert example.prompt_stop > 300
    pages = [attention_study(wide, example), anchor_study(wide, example, detect_anchors(wide, example.ids, prompt_range=(0, example.prompt_stop)))[0]]
    for page in pages:
        path = write_page(tmp_path / page.name, page.title, page.sections, {})
        assert path.stat().st_size < LIMIT_MB * 2**20, (page.name, path.stat().st_size)
