"""A model config's common fields in plain words, and which attribute holds each one in a given architecture.

Configs name the same idea differently (GPT-2's ``n_embd`` is Llama's ``hidden_size``, T5's ``d_ff`` is
``intermediate_size``); the views and the builder speak of the usual names and find the real attribute here.
Every sentence names the field and its value, then says what it means for someone learning how models work.
"""

from __future__ import annotations

from typing import Any

# The usual name of each field, then the names other architectures give it.
ALIASES: dict[str, tuple[str, ...]] = {
    "model_type": (),
    "hidden_size": ("n_embd", "d_model", "dim"),
    "num_hidden_layers": ("n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("n_head", "num_heads", "n_heads"),
    "num_key_value_heads": ("num_kv_heads", "multi_query_group_num"),
    "head_dim": ("d_kv",),
    "intermediate_size": ("n_inner", "d_ff", "ffn_dim", "hidden_dim"),
    "vocab_size": (),
    "max_position_embeddings": ("n_positions", "n_ctx", "max_seq_len"),
    "rope_theta": (),
    "hidden_act": ("activation_function", "hidden_activation", "activation", "feed_forward_proj"),
    "rms_norm_eps": ("layer_norm_eps", "layer_norm_epsilon"),
    "tie_word_embeddings": (),
    "type_vocab_size": (),
    "sliding_window": (),
    "dtype": (),
}

# The fields "Build your own" lets a visitor change (all whole numbers).
EDITABLE = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
)


def attribute(config: Any, name: str) -> str | None:
    """The attribute of `config` that holds the field `name` (None when the architecture has no such field)."""
    mapped = getattr(type(config), "attribute_map", {}) or {}
    if name in mapped:
        return mapped[name]
    for candidate in (name, *ALIASES.get(name, ())):
        if candidate in vars(config):
            return candidate
    return None


def value_of(config: Any, name: str) -> Any:
    """The field's value (None when absent); rope_theta may sit inside `rope_parameters` (transformers 5)."""
    if name == "rope_theta":
        rope = getattr(config, "rope_parameters", None)
        if isinstance(rope, dict) and rope.get("rope_theta") is not None:
            return rope["rope_theta"]
    attr = attribute(config, name)
    return None if attr is None else getattr(config, attr, None)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _sentence(name: str, value: Any, config: Any) -> str:
    """What the field means, in a sentence or two (the field's own name and value come first)."""
    hidden = value_of(config, "hidden_size")
    heads = value_of(config, "num_attention_heads")
    shown = _number(value)
    if name == "model_type":
        return f"The architecture family is {shown}: transformers picks the code that runs the model from this name."
    if name == "hidden_size":
        return (
            f"Every token is a list of {shown} numbers while it flows through the model (its hidden state). "
            "More numbers give more room for meaning, and cost more memory and compute."
        )
    if name == "num_hidden_layers":
        return (
            f"The text passes through {shown} transformer blocks, one after the other. In each block the "
            "tokens first look at each other (attention), then each token is worked on alone (the MLP)."
        )
    if name == "num_attention_heads":
        per_head = f" Each head works on {hidden // value} of the {hidden} numbers." if _divides(hidden, value) else ""
        return (
            f"Each attention layer has {shown} heads that look at the text side by side, each with its own "
            f"pattern (one may look at the previous word, another at the subject of the sentence).{per_head}"
        )
    if name == "num_key_value_heads":
        if heads and value == heads:
            return f"{shown} key/value heads, one per attention head: classic multi-head attention."
        if value == 1:
            return (
                f"{shown} key/value head shared by all {heads} attention heads (multi-query attention): the "
                "memory kept per token while generating is as small as it gets."
            )
        return (
            f"The {heads} attention heads share {shown} sets of keys and values (grouped-query attention): the "
            f"memory kept per token while generating is {heads // value if _divides(heads, value) else '?'}x "
            "smaller than with one set per head."
        )
    if name == "head_dim":
        return f"Each attention head compares queries and keys of {shown} numbers."
    if name == "intermediate_size":
        ratio = f" ({value / hidden:.1f}x wider)" if isinstance(hidden, int) and hidden else ""
        return (
            f"The MLP in each block widens every token to {shown} numbers{ratio} and back: most of a block's "
            "parameters, and much of what the model knows, sit there."
        )
    if name == "vocab_size":
        return (
            f"The tokenizer knows {shown} tokens. The embedding table has one row of hidden_size numbers per "
            "token, and when the model guesses the next token it scores every one of them."
        )
    if name == "max_position_embeddings":
        return f"The longest input the model was built for: {shown} tokens (its context window)."
    if name == "rope_theta":
        return (
            f"Positions are marked by rotating queries and keys (RoPE) with base {shown}. A larger base turns "
            "more slowly from one position to the next, which helps the model tell far-apart tokens apart."
        )
    if name == "hidden_act":
        return (
            f"The MLP's non-linearity is {shown}: the bend that lets stacked layers learn more than one big "
            "linear map."
        )
    if name == "rms_norm_eps":
        return (
            f"A tiny number ({shown}) added when each token's numbers are rescaled (normalised), so the model "
            "never divides by zero."
        )
    if name == "tie_word_embeddings":
        if value:
            return (
                "The output layer that scores the next token reuses the embedding table, which saves "
                "vocab_size x hidden_size parameters."
            )
        return "The output layer has its own table, separate from the embeddings."
    if name == "type_vocab_size":
        return f"{shown} segment embeddings: BERT marks which sentence (first or second) each token belongs to."
    if name == "sliding_window":
        return (
            f"Each token only looks at the last {shown} tokens (sliding-window attention), so long texts stay cheap."
        )
    if name == "dtype":
        return f"The weights were saved as {shown} numbers (float32 takes 4 bytes each, bfloat16 2)."
    return f"{name} = {shown}."


def _divides(total: Any, part: Any) -> bool:
    return isinstance(total, int) and isinstance(part, int) and part > 0 and total % part == 0


def explain(config: Any) -> list[dict]:
    """One {"field", "name", "value", "explanation"} per common field the config has, in a teaching order.

    `field` is the config's own attribute (``n_embd`` on GPT-2), `name` the usual name (``hidden_size``),
    `explanation` plain text (not HTML) such as "hidden_size = 576: Every token is a list of 576 numbers ...".
    """
    rows = []
    for name in ALIASES:
        value = value_of(config, name)
        if value is None or isinstance(value, dict | list):
            continue
        if name in ("hidden_size", "num_hidden_layers", "num_attention_heads") and not isinstance(value, int):
            continue
        if not isinstance(value, int | float | str | bool):  # a torch dtype: its name, as JSON can carry it
            value = str(value).removeprefix("torch.")
        field = attribute(config, name) or name
        sentence = f"{field} = {_number(value)}: {_sentence(name, value, config)}"
        rows.append({"field": field, "name": name, "value": value, "explanation": sentence})
    return rows
