"""The explorer's other tools: decode and round trip, batches with padding and truncation, chat templates, the
vocabulary browser, and comparing tokenizers on one text. All return plain data; the tab draws it.
"""

from __future__ import annotations

import json
import logging

from services.errors import PlaygroundError
from services.tokenizer_roundtrip import (  # noqa: F401  (re-exported: the explorer's tools in one place)
    ROUND_TRIP_CHARS,
    decode,
    parse_ids,
    round_trip,
)
from services.tokenizers import TokenizerError, analyze, load_tokenizer

logger = logging.getLogger(__name__)

COMPARE_CHARS = 5_000
MAX_BATCH = 4
ROLES = ("system", "user", "assistant", "tool")
PADDING = ("longest", "max_length", "do_not_pad")
TRUNCATION = ("do_not_truncate", "longest_first", "only_first", "only_second")


# ---- batches: padding, truncation, masks ---------------------------------------------------------------------


def batch_encode(
    tokenizer: str,
    texts: list[str],
    pair: str | None = None,
    padding: str = "longest",
    padding_side: str = "right",
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
    truncation: str = "do_not_truncate",
    stride: int = 0,
    return_overflowing_tokens: bool = False,
    add_special_tokens: bool = True,
    owner: str | None = None,
) -> dict:
    """Encode 1-4 texts together as a model would see them: one row per sequence (overflow rows included)."""
    tok = load_tokenizer(tokenizer, owner)
    texts = [t for t in (texts or []) if t is not None and t.strip()]
    if not texts:
        raise TokenizerError("Type at least one text for the batch.")
    if len(texts) > MAX_BATCH:
        raise TokenizerError(f"The batch view takes at most {MAX_BATCH} texts; you gave {len(texts)}.")
    if padding not in PADDING:
        raise TokenizerError(f"Padding must be one of {', '.join(PADDING)}.")
    if truncation not in TRUNCATION:
        raise TokenizerError(f"Truncation must be one of {', '.join(TRUNCATION)}.")
    if padding_side not in ("left", "right"):
        raise TokenizerError("The padding side is left or right.")
    max_length = int(max_length) if max_length else None
    pad_to_multiple_of = int(pad_to_multiple_of) if pad_to_multiple_of else None
    stride = int(stride or 0)
    if (padding == "max_length" or truncation != "do_not_truncate") and not max_length:
        raise TokenizerError("Set a maximum length: padding to a length and truncation both need one.")
    if max_length is not None and not 1 <= max_length <= 8192:
        raise TokenizerError("The maximum length must be between 1 and 8,192 tokens.")
    if truncation == "only_second" and not (pair or "").strip():
        raise TokenizerError("'only_second' truncates the second text of a pair: type a paired text too.")
    if return_overflowing_tokens and truncation == "do_not_truncate":
        raise TokenizerError("Overflow only exists when texts are truncated: choose a truncation strategy.")
    if stride and max_length and stride >= max_length:
        raise TokenizerError("The stride must be smaller than the maximum length.")
    if padding != "do_not_pad" and tok.hf.pad_token_id is None:
        raise TokenizerError(
            f"{tok.id} has no padding token, so it cannot pad a batch (models like GPT-2 pad with their end token "
            "after setting `tokenizer.pad_token = tokenizer.eos_token`). Choose 'do_not_pad'."
        )
    pairs = [pair] * len(texts) if (pair or "").strip() else None
    try:
        with tok.lock:  # a call sets padding/truncation on the shared backend
            encoded = tok.hf(
                texts,
                text_pair=pairs,
                padding=False if padding == "do_not_pad" else padding,
                padding_side=padding_side,
                truncation=False if truncation == "do_not_truncate" else truncation,
                max_length=max_length,
                stride=stride,
                pad_to_multiple_of=pad_to_multiple_of,
                return_overflowing_tokens=return_overflowing_tokens,
                return_attention_mask=True,
                return_token_type_ids=True,
                add_special_tokens=add_special_tokens,
            )
            tok.hf.backend_tokenizer.no_padding()
            tok.hf.backend_tokenizer.no_truncation()
    except PlaygroundError:
        raise
    except Exception as err:
        logger.info("Batch encode refused: %s", err)
        message = str(err).split("\n")[0]
        raise TokenizerError(f"The tokenizer refused these settings: {message}") from err
    mapping = encoded.get("overflow_to_sample_mapping")
    rows, seen = [], set()
    for index, ids in enumerate(encoded["input_ids"]):
        sample = int(mapping[index]) if mapping is not None else index
        rows.append(
            {
                "sample": sample,
                "overflow": sample in seen,
                "tokens": tok.hf.convert_ids_to_tokens(ids),
                "input_ids": list(ids),
                "attention_mask": list(encoded["attention_mask"][index]),
                "token_type_ids": list(encoded["token_type_ids"][index]) if "token_type_ids" in encoded else [],
                "word_ids": encoded.word_ids(index),
            }
        )
        seen.add(sample)
    return {"tokenizer": tok.id, "pad_token": tok.hf.pad_token, "rows": rows}


# ---- chat templates --------------------------------------------------------------------------------------------


def parse_conversation(value: str | list) -> list[dict]:
    """Messages from JSON (a list of {role, content}) or from lines such as 'user: Hello'."""
    if isinstance(value, list):
        messages = value
    else:
        text = (value or "").strip()
        if not text:
            raise TokenizerError("Type a conversation, one message per line, such as 'user: Hello!'.")
        if text.startswith("["):
            try:
                messages = json.loads(text)
            except ValueError as err:
                raise TokenizerError("The conversation looks like JSON but is not valid JSON.") from err
        else:
            messages = []
            for line in text.splitlines():
                role, sep, content = line.partition(":")
                if sep and role.strip().lower() in ROLES:
                    messages.append({"role": role.strip().lower(), "content": content.strip()})
                elif messages:
                    messages[-1]["content"] += "\n" + line
                else:
                    raise TokenizerError(
                        "Start each message with its role: 'system:', 'user:' or 'assistant:' and the text after it."
                    )
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages
    ):
        raise TokenizerError("Each message needs a role (system, user, assistant or tool) and a text.")
    if not messages:
        raise TokenizerError("The conversation has no messages.")
    return messages


def chat(tokenizer: str, conversation: str | list, add_generation_prompt: bool = True, owner: str | None = None):
    """The conversation rendered through the tokenizer's chat template, and that text tokenized."""
    tok = load_tokenizer(tokenizer, owner)
    messages = parse_conversation(conversation)
    if not getattr(tok.hf, "chat_template", None):
        raise TokenizerError(
            f"{tok.id} has no chat template: it was not made for conversations. Try smollm2-135m-instruct."
        )
    try:
        rendered = tok.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as err:
        message = str(err).split("\n")[0]
        raise TokenizerError(f"The chat template of {tok.id} refused this conversation: {message}") from err
    view = analyze(tokenizer, rendered, add_special_tokens=False, owner=owner)
    return {"messages": messages, "rendered": rendered, "view": view}


# ---- vocabulary -----------------------------------------------------------------------------------------------


def vocabulary(tokenizer: str, query: str = "", limit: int = 200, owner: str | None = None) -> dict:
    """Vocabulary size, special tokens, tokens matching a text or an id, and BPE merges that match."""
    tok = load_tokenizer(tokenizer, owner)
    limit = max(1, min(int(limit or 200), 1000))
    query = (query or "").strip()
    entries = tok.readable_vocab
    matches = []
    if query.isdigit() and tok.backend.id_to_token(int(query)) is not None:
        i = int(query)
        matches.append(next(e for e in entries if e[0] == i))
    if query:
        needle = query.lower()
        matches += [e for e in entries if (needle in e[2].lower() or needle in e[1].lower()) and e not in matches]
    else:
        matches = entries
    merges = tok.spec.get("model", {}).get("merges") or []
    merge_rows = []
    for rank, merge in enumerate(merges):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        if not query or query in left + right or query.lower() in (left + right).lower():
            merge_rows.append({"rank": rank, "left": left, "right": right, "result": left + right})
            if len(merge_rows) >= limit:
                break
    specials = sorted(
        ({"token": tok.backend.id_to_token(i), "id": i} for i in tok.special_ids if i is not None),
        key=lambda d: d["id"],
    )
    return {
        "tokenizer": tok.id,
        "kind": tok.kind,
        "vocab_size": tok.vocab_size,
        "special_tokens": specials,
        "match_count": len(matches),
        "matches": [{"id": i, "token": t, "readable": r} for i, t, r in matches[:limit]],
        "merges_total": len(merges),
        "merges": merge_rows,
    }


# ---- comparing ------------------------------------------------------------------------------------------------


def compare(tokenizers: list[str], text: str, add_special_tokens: bool = False, owner: str | None = None) -> dict:
    """2-4 tokenizers on one text: counts side by side, and token groups aligned by character.

    A cut (a group boundary) that not every tokenizer makes is marked as a difference.
    """
    names = [t.strip() for t in tokenizers if t and t.strip()]
    if len(names) < 2:
        raise TokenizerError("Pick at least two tokenizers to compare.")
    if len(names) > 4:
        raise TokenizerError("Compare at most four tokenizers at a time.")
    if len(set(names)) != len(names):
        raise TokenizerError("The same tokenizer is picked twice: pick different ones.")
    text = text or ""
    if not text.strip():
        raise TokenizerError("Type a text to compare the tokenizers on.")
    views = [analyze(name, text, add_special_tokens, owner=owner, render_chars=COMPARE_CHARS) for name in names]
    cuts = [{b for s, e, _ in v["groups"] for b in (s, e)} for v in views]
    shared = set.intersection(*cuts)
    rows = []
    for view, mine in zip(views, cuts, strict=False):
        rows.append(
            {
                "tokenizer": view["tokenizer"],
                "kind": view["kind"],
                "vocab_size": view["vocab_size"],
                "counts": view["counts"],
                "tokens": view["tokens"],
                "groups": view["groups"],
                "different_cuts": sorted(mine - shared),
            }
        )
    return {"text": views[0]["text"], "truncated_view": views[0]["truncated_view"], "rows": rows}
