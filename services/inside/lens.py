"""The logit lens: what the model would answer if it stopped after each layer.

A causal LM's hidden state after layer l goes through the model's own final norm and output head (lm_head), as
the last layer's does, and the top guesses for the next token are read off. The last row is the model's own
prediction (its real logits, so they agree exactly). A masked LM's hidden states go through its MLM head
(BERT's ``cls``, RoBERTa's ``lm_head``) at each [MASK] position, or at each position when there is no mask.
Layer 0 is the embedding table's output: the lens before any block has run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Where architectures keep the norm applied after the last block (on the base model, or the encoder).
_FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f", "final_norm")


def stack_of(model: Any) -> Any:
    """The module that runs the blocks: the encoder of an encoder-decoder, else the base model."""
    if getattr(model.config, "is_encoder_decoder", False):
        return model.get_encoder()
    return getattr(model, "base_model", model)


def final_norm(model: Any) -> Any | None:
    """The norm applied after the last block, or None when the architecture has none (BERT: post-norm blocks)."""
    import torch

    stack = stack_of(model)
    for name in _FINAL_NORMS:
        module = getattr(stack, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def head_of(model: Any, kind: str) -> Callable[[Any], Any] | None:
    """The function from hidden states to vocabulary logits: the output head (`kind` "causal") or the MLM head
    ("masked"); None when this architecture keeps it somewhere the lens does not know."""
    if kind == "causal":
        head = model.get_output_embeddings()
        return head if head is not None else None
    for name in ("cls", "lm_head", "predictions"):
        head = getattr(model, name, None)
        if head is not None and callable(head):
            return head
    if all(hasattr(model, n) for n in ("vocab_transform", "vocab_layer_norm", "vocab_projector")):  # DistilBERT
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    return None


def _top(probs: Any, top_k: int, piece: Callable[[int], str], digits: int | None) -> list[dict]:
    values, ids = probs.topk(min(top_k, probs.shape[-1]))
    out = []
    for value, token_id in zip(values.tolist(), ids.tolist(), strict=True):
        value = round(value, digits) if digits is not None else value
        out.append({"id": token_id, "token": piece(token_id), "probability": value})
    return out


def read(
    hidden: Any,
    final_logits: Any,
    positions: list[int],
    norm: Any | None,
    head: Callable[[Any], Any],
    top_k: int,
    piece: Callable[[int], str],
    digits: int | None,
) -> list[dict]:
    """The lens at `positions`: per position {"position", "layers": [{"layer", "label", "top": [{"id", "token",
    "probability"}], "final_token_probability"}], "prediction": {"id", "token", "probability"}}.

    `hidden` is [layers + 1, tokens, hidden] with the last block's output before the final norm; `final_logits`
    [tokens, vocab] are the model's own logits, used as they are for the last layer.
    """
    import torch

    layers = hidden.shape[0] - 1
    at = hidden[:-1, positions]  # [layers, positions, hidden]: the states before the last block's output
    states = norm(at) if norm is not None else at
    logits = torch.cat([head(states).float(), final_logits[positions].float()[None]], dim=0)
    probs = logits.softmax(-1)  # [layers + 1, positions, vocab]
    result = []
    for column, position in enumerate(positions):
        final = probs[-1, column]
        final_id = int(final.argmax())
        rows = []
        for layer in range(layers + 1):
            row_probs = probs[layer, column]
            chance = float(row_probs[final_id])
            rows.append(
                {
                    "layer": layer,
                    "label": "embeddings" if layer == 0 else f"layer {layer}",
                    "top": _top(row_probs, top_k, piece, digits),
                    "final_token_probability": round(chance, digits) if digits is not None else chance,
                }
            )
        best = float(final[final_id])
        prediction = {
            "id": final_id,
            "token": piece(final_id),
            "probability": round(best, digits) if digits is not None else best,
        }
        result.append({"position": position, "layers": rows, "prediction": prediction})
    return result
