"""interp as an lm-evaluation-harness model: any task, with an attention intervention active.

``InterpLM`` is lm-evaluation-harness's own Hugging Face model (``HFLM``) running the hooked model
that :func:`interp.load_model` builds: the harness batches, pads, scores log-likelihoods and
generates exactly as it does for ``--model hf``, and every forward pass (each decoding step
included) runs with the intervention's edits applied, by the same path as ``interp.generate``
(:func:`interp.decoding.generation.decoder`: the plain model with the edits inside its attention, or
the bridge's hooks).

lm-evaluation-harness finds models only in its own registry (it has no plugin discovery), so the
command is ``interp-lm-eval``: lm_eval's command line with ``--model interp`` registered::

    interp-lm-eval --model interp --model_args pretrained=PATH,intervention=emulation,alpha=0.2 --tasks piqa

Interventions are the harness methods that are the same for every request (``emulation`` and its
parameters); those that need each request's prompt range are refused with the reason.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from interp.accuracy.methods import KINDS, FixedMethod, HeadsToSelect, parse_method
from interp.decoding.generation import decoder, new_cache
from interp.edits.intervention import Intervention
from interp.edits.plan import plan_edits
from interp.model.load import load_model


def interventions_from_args(intervention: str | None, params: dict[str, Any]) -> tuple[Intervention, ...]:
    """The interventions named by ``intervention=KIND`` and its parameters in ``--model_args``."""
    if intervention in (None, "", "none"):
        if params:
            raise ValueError(f"model_args {sorted(params)} are intervention parameters, but no intervention= is given")
        return ()
    if intervention not in KINDS:
        raise ValueError(f"unknown intervention={intervention!r}; choose from none, {', '.join(KINDS)}")
    spec = intervention + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
    method = parse_method(spec)
    if isinstance(method, HeadsToSelect):
        raise ValueError(f"intervention={intervention} with heads=auto chooses heads on held-out questions, which "
                         f"lm-evaluation-harness does not give a model; choose them with `interp heads --for "
                         f"{intervention}` and give heads=FILE")
    if not isinstance(method, FixedMethod):
        raise ValueError(
            f"intervention={intervention} acts on each question's prompt range, which lm-evaluation-harness's "
            "batched requests do not carry; use intervention=emulation here, or `interp accuracy --method "
            f"{intervention}` on the built-in benchmarks"
        )
    return method.fixed


@register_model("interp")
class InterpLM(HFLM):
    """``HFLM`` over interp's hooked model, with ``intervention`` (and its parameters) active."""

    def __init__(
        self,
        pretrained: str,
        intervention: str | None = None,
        tokenizer: str | None = None,
        dtype: str | None = None,
        device: str | None = None,
        cache: str | None = None,
        **kwargs: Any,
    ) -> None:
        kinds = {key for _, allowed in KINDS.values() for key in allowed}
        params = {key: kwargs.pop(key) for key in list(kwargs) if key in kinds}
        interventions = interventions_from_args(intervention, params)
        dtype = None if dtype in (None, "auto") else dtype
        if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"  # lm_eval's default device ("cuda:0"), on a machine without one
        self.hooked = load_model(pretrained, tokenizer=tokenizer, dtype=dtype, device=device, cache=cache)
        self.plan = plan_edits(self.hooked, *interventions)
        # The bridge has rewired the Hugging Face model to run through its hooks: the harness calls
        # that model as it would any other.
        super().__init__(pretrained=self.hooked.original_model, tokenizer=self.hooked.tokenizer, **kwargs)

    @contextmanager
    def _edited(self) -> Iterator[None]:
        """The harness's calls go to the model interp decodes with, the interventions attached:
        the plain model with the edits inside its attention, or the bridge's hooked model."""
        with decoder(self.hooked, self.plan, None) as forward:
            self._model = forward
            try:
                yield
            finally:
                self._model = self.hooked.original_model

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        with self._edited():
            return super()._model_call(inps, attn_mask, labels)

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any) -> torch.Tensor:
        # A cache that keeps every layer's keys, as interp.generate uses: the edits count key
        # positions, which transformers' sliding-window cache layers would shift.
        generation_kwargs.setdefault("past_key_values", new_cache())
        with self._edited():
            return super()._model_generate(context, max_length, stop, **generation_kwargs)


def main() -> None:
    """lm_eval's command line, with ``--model interp`` registered (by importing this module)."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
