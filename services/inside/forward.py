"""One forward pass on a visitor's text, shown step by step: attention per layer and head, what kind of head each
one is, how much each layer changes the hidden states, and the logit lens.

Everything comes from ONE forward pass with `output_attentions=True` and `output_hidden_states=True`: the views
cost little more than that pass itself (bench/inside.py measures it). Fused attention kernels (sdpa, flash) do not
return the attention weights, so the pass runs with the plain ("eager") attention and the model is switched back
after, all while holding the model's `busy` lock: the copy every visitor shares is never seen half-switched.
Inputs are cut to the first `MAX_VIEW_TOKENS` tokens, fewer on a big model (`MAX_ATTENTION_VALUES` bounds the
size of the attention matrices), and the result says so in a sentence.
"""

from __future__ import annotations

import gc
import math
from typing import Any

from services.core import gpu
from services.core.errors import PlaygroundError
from services.core.limits import check_number, check_text
from services.inside import common, heads, lens
from services.models.adapters import shown_name

MAX_VIEW_TOKENS = 256  # the most tokens the views show
MAX_ATTENTION_VALUES = 2_000_000  # layers x heads x tokens x tokens, at most (about 14 MB of JSON at 4 decimals)
MAX_LENS_POSITIONS = 32  # a masked LM without [MASK]: the lens at this many positions at most
MAX_TOP_K = 20
DIGITS = 4  # the UI payload's floats are rounded to this; `precise=True` keeps full precision


def _digits(precise: bool) -> int | None:
    return None if precise else DIGITS


def _floats(tensor: Any, digits: int | None) -> list:
    """A tensor as nested lists of Python floats, rounded in double precision (so 0.1234 prints as 0.1234)."""
    values = tensor if digits is None else tensor.double().round(decimals=digits)
    if values.numel() < 100_000:
        return values.tolist()
    # A million floats in thousands of new lists set off the garbage collector again and again (a quarter of the
    # time, measured on SmolLM2's maps); none of them can be garbage yet, so it waits until they are built.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return values.tolist()
    finally:
        if enabled:
            gc.enable()


def _byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in repr(backend.decoder)


def _pieces_fn(tokenizer: Any):
    """A function from token id to the text it stands for (GPT-2 style bytes decoded, SentencePiece's ▁ a space)."""
    from services.tokenizers.bytes import byte_decoder, readable

    byte_level, table = _byte_level(tokenizer), byte_decoder()

    def piece(token_id: int) -> str:
        token = tokenizer.convert_ids_to_tokens(int(token_id))
        token = "" if token is None else str(token)
        if byte_level and all(c in table for c in token):
            return readable(bytes(table[c] for c in token))
        return token.replace("\u2581", " ")

    return piece


def token_cap(config: Any, max_tokens: int | None = None) -> tuple[int, str]:
    """How many tokens the views take from a text for this model, and why no more: the smallest of `max_tokens`,
    `MAX_VIEW_TOKENS`, the model's own position limit, and what keeps its attention maps under
    `MAX_ATTENTION_VALUES` numbers."""
    from services.inside.fields import value_of
    from services.models.loading import token_limit

    caps = [(MAX_VIEW_TOKENS, f"the views look at up to {MAX_VIEW_TOKENS:,} tokens")]
    if max_tokens:
        caps.append((max_tokens, f"up to {max_tokens:,} tokens were asked for"))
    limit = token_limit(config)
    caps.append((limit, f"the model reads at most {limit:,} tokens"))
    layers, heads_ = value_of(config, "num_hidden_layers"), value_of(config, "num_attention_heads")
    if isinstance(layers, int) and isinstance(heads_, int) and layers > 0 and heads_ > 0:
        budget = math.isqrt(MAX_ATTENTION_VALUES // (layers * heads_))
        caps.append(
            (
                budget,
                f"with {layers} layers of {heads_} attention heads, longer texts would make the "
                "attention maps too big to show",
            )
        )
    cap, reason = min(caps, key=lambda item: item[0])
    return max(cap, 2), reason


def lens_kind(loaded: Any) -> str | None:
    """The lens this model gets: "causal" (next token), "masked" (fill-mask) or None (no vocabulary head)."""
    if getattr(loaded.model.config, "is_encoder_decoder", False):
        return None
    return {"text-generation": "causal", "fill-mask": "masked"}.get(loaded.task)


def _run(loaded: Any, ids: list[int]) -> tuple[Any, Any, Any, bool]:
    """The forward pass: (attentions [L, H, n, n], hidden states [L + 1, n, d] with the last block's output
    taken before the final norm, logits [n, vocab] or None, whether attention was switched to eager)."""
    import torch

    from services.core.limits import courtesy
    from services.pipelines import use_threads

    model = loaded.model
    norm = lens.final_norm(model)
    captured: dict[str, Any] = {}
    hook = norm.register_forward_pre_hook(lambda _m, args: captured.setdefault("pre", args[0])) if norm else None
    before = model.config._attn_implementation
    switched = before not in (None, "eager")
    try:
        if switched:
            model.set_attn_implementation("eager")
        run = lens.stack_of(model) if getattr(model.config, "is_encoder_decoder", False) else model
        device = next(model.parameters()).device
        with courtesy().quick() as threads, torch.inference_mode():
            if loaded.device == "cpu":
                use_threads(threads)
            out = run(input_ids=torch.tensor([ids], device=device), output_attentions=True, output_hidden_states=True)
    finally:
        if switched:
            model.set_attn_implementation(before)
        if hook is not None:
            hook.remove()
    if not out.attentions or any(a is None for a in out.attentions):
        raise PlaygroundError(
            f"'{shown_name(loaded.id)}' does not hand out its attention weights, so its attention cannot be shown."
        )
    attentions = torch.stack([a[0] for a in out.attentions]).float().cpu()
    hidden = list(out.hidden_states)
    if "pre" in captured:  # the last entry is after the final norm: the lens and the updates want it before
        hidden[-1] = captured["pre"]
    hidden = torch.stack([h[0] for h in hidden]).float().cpu()
    logits = out.logits[0].float().cpu() if getattr(out, "logits", None) is not None else None
    return attentions, hidden, logits, switched


def _tokenize(loaded: Any, text: str) -> tuple[list[int], list[int | None]]:
    tokenizer = loaded.tokenizer
    encoding = tokenizer(text, add_special_tokens=True, verbose=False)
    ids = list(encoding["input_ids"])
    try:
        words = list(encoding.word_ids())
    except (AttributeError, ValueError):  # a slow tokenizer: no word boundaries
        words = [None] * len(ids)
    return ids, words


def _updates(hidden: Any, digits: int | None) -> list[dict]:
    """How much each block changes each token: ||h_l - h_(l-1)||, and that relative to ||h_(l-1)||."""
    delta = (hidden[1:] - hidden[:-1]).norm(dim=-1)  # [layers, tokens]
    size = hidden[:-1].norm(dim=-1).clamp_min(1e-12)
    relative = (delta / size).mean(-1)
    rows = []
    for layer, (per_token, mean, rel) in enumerate(zip(delta, delta.mean(-1), relative, strict=True), start=1):
        rows.append(
            {
                "layer": layer,
                "mean_norm": round(float(mean), digits) if digits is not None else float(mean),
                "relative": round(float(rel), digits) if digits is not None else float(rel),
                "per_token": _floats(per_token, digits),
            }
        )
    return rows


def _lens_positions(kind: str, ids: list[int], tokenizer: Any, position: int | None, notices: list[str]) -> list[int]:
    n = len(ids)
    if position is not None:
        if not -n <= int(position) < n:
            raise PlaygroundError(f"Position {position} is outside the text: it has {n} tokens (0 to {n - 1}).")
        return [int(position) % n]
    if kind == "causal":
        return [n - 1]
    mask = getattr(tokenizer, "mask_token_id", None)
    masks = [i for i, token in enumerate(ids) if mask is not None and token == mask]
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    chosen = masks or [i for i, token in enumerate(ids) if token not in special] or list(range(n))
    if len(chosen) > MAX_LENS_POSITIONS:
        notices.append(f"The fill-mask lens is shown for the first {MAX_LENS_POSITIONS} of {len(chosen)} positions.")
    return chosen[:MAX_LENS_POSITIONS]


ALL_PARTS = ("attention", "heads", "updates", "lens")


def views(
    loaded: Any,
    text: str,
    max_tokens: int | None = None,
    top_k: int = 5,
    position: int | None = None,
    precise: bool = False,
    parts: tuple[str, ...] = ALL_PARTS,
) -> dict:
    """`forward_views` on a model already loaded (the CLI, the bench and the tests call this)."""
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError("Type a text first: the model needs at least one word to work on.")
    check_text(text, "That text")
    top_k = check_number(top_k, "top_k", MAX_TOP_K, 1) or 5
    max_tokens = check_number(max_tokens, "max_tokens", MAX_VIEW_TOKENS, 2)
    digits, notices = _digits(precise), []
    name = shown_name(loaded.id)
    with gpu.lane(loaded.device), loaded.busy:  # the tokenizer and the attention switch: not to share mid-call
        ids, words = _tokenize(loaded, text)
        total = len(ids)
        if not ids:
            raise PlaygroundError("The tokenizer turned that text into no tokens at all: type some words.")
        cap, reason = token_cap(loaded.model.config, max_tokens)
        if len(ids) > cap:
            notices.append(f"Only the first {cap:,} of {len(ids):,} tokens are shown: {reason}.")
            ids, words = ids[:cap], words[:cap]
        attentions, hidden, logits, switched = _run(loaded, ids)
        piece = _pieces_fn(loaded.tokenizer)
        result: dict[str, Any] = {
            "model": name,
            "task": loaded.task,
            "tokens": [str(t) for t in loaded.tokenizer.convert_ids_to_tokens(ids)],
            "pieces": [piece(i) for i in ids],
            "ids": ids,
            "total_tokens": total,
            "layers": int(attentions.shape[0]),
            "heads_per_layer": int(attentions.shape[1]),
        }
        kind = lens_kind(loaded)
        causal = kind == "causal" or (kind is None and _is_causal(attentions))
        result["causal"] = causal
        if "lens" in parts:
            result["lens"] = _lens(loaded, kind, ids, hidden, logits, top_k, position, piece, digits, notices)
    if switched:
        notices.append(
            f"{name} normally computes attention with a fused kernel that does not return the attention "
            "weights, so this pass used the plain (eager) attention: same results, a little slower."
        )
    if "attention" in parts:
        result["attentions"] = _floats(attentions, digits)
    if "heads" in parts:
        result["head_summary"] = heads.summarize(attentions, words, causal, digits)
    if "updates" in parts:
        result["updates"] = _updates(hidden, digits)
    result["notices"] = notices
    return result


def _is_causal(attentions: Any) -> bool:
    """Whether no query gives attention to later tokens (a causal model under another head, such as a classifier
    on a decoder), read off the weights themselves."""
    import torch

    n = attentions.shape[-1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return n > 1 and bool((attentions[..., upper].abs() <= 1e-9).all())


def _lens(loaded, kind, ids, hidden, logits, top_k, position, piece, digits, notices) -> dict | None:
    if getattr(loaded.model.config, "is_encoder_decoder", False):
        notices.append(
            f"Only the encoder of {shown_name(loaded.id)} is shown: it reads the text, and its decoder writes the "
            "answer. The logit lens needs a model that guesses tokens from the text alone (decoder-only or masked)."
        )
        return None
    if kind is None or logits is None:
        notices.append(
            f"{shown_name(loaded.id)} has no head that scores the vocabulary, so there is no logit lens "
            "for it (its attention and layer updates are shown)."
        )
        return None
    head = lens.head_of(loaded.model, kind)
    if head is None:
        notices.append("The logit lens does not know where this architecture keeps its output head.")
        return None
    positions = _lens_positions(kind, ids, loaded.tokenizer, position, notices)
    import torch

    with torch.inference_mode():
        rows = lens.read(hidden, logits, positions, lens.final_norm(loaded.model), head, top_k, piece, digits)
    return {"kind": "next-token" if kind == "causal" else "fill-mask", "top_k": top_k, "positions": rows}


def forward_views(
    model_id: str,
    text: str,
    owner: str | None = None,
    max_tokens: int | None = MAX_VIEW_TOKENS,
    top_k: int = 5,
    position: int | None = None,
    precise: bool = False,
) -> dict:
    """Every view of one forward pass on `text` (see the module docstring for the caps).

    Returns {"model", "task", "tokens" (vocabulary strings), "pieces" (the text each token stands for),
    "ids", "total_tokens" (before the cap), "layers", "heads_per_layer", "causal" (bool),
    "attentions": [layer][head][query][key] floats (each row sums to 1),
    "head_summary": `heads.summarize`, "updates": [{"layer" (1 = first block), "mean_norm", "relative",
    "per_token"}], "lens": None or {"kind": "next-token" | "fill-mask", "top_k", "positions": [{"position",
    "layers": [{"layer" (0 = embeddings), "label", "top": [{"id", "token", "probability"}],
    "final_token_probability"}], "prediction": {"id", "token", "probability"}}]}, "notices": [sentences]}.
    Strings are plain text (tokens may hold "<", "&": escape them when rendering HTML). Floats are rounded to
    `DIGITS` decimals unless `precise`.
    """
    loaded, _ = common.load_model(model_id, owner)
    return views(loaded, text, max_tokens=max_tokens, top_k=top_k, position=position, precise=precise)


def attention(model_id: str, text: str, owner: str | None = None, precise: bool = True) -> dict:
    """Exactly {"tokens": [vocabulary strings], "attentions": [layer][head][query][key]}, full precision unless
    `precise=False` (`forward_views` has the notices and everything else)."""
    loaded, _ = common.load_model(model_id, owner)
    result = views(loaded, text, precise=precise, parts=("attention",))
    return {"tokens": result["tokens"], "attentions": result["attentions"]}


def logit_lens(
    model_id: str,
    text: str,
    owner: str | None = None,
    top_k: int = 5,
    position: int | None = None,
    precise: bool = True,
) -> dict:
    """{"model", "tokens", "pieces", "lens" (as in `forward_views`), "notices"}; full precision by default."""
    loaded, _ = common.load_model(model_id, owner)
    result = views(loaded, text, top_k=top_k, position=position, precise=precise, parts=("lens",))
    return {key: result[key] for key in ("model", "tokens", "pieces", "lens", "notices")}
