"""The explorer's other tools: decode and round trip, batches with padding and truncation, chat templates, the
vocabulary browser, and comparing tokenizers on one text. All return plain data; the tab draws it.

Each checks what it was sent against the caps of `services.core.limits` before loading or tokenizing: a batch holds at
most MAX_BATCH texts of `tokenize_chars` characters in all, its lengths, padding and stride stay within
`sequence_tokens`, and its answer (overflow rows and padding included) lists at most `tokenize_chars` tokens; a
conversation takes `prompt_chars`, a vocabulary search `item_chars`, a comparison 2-4 tokenizers on `text_chars`.
"""

from __future__ import annotations

import inspect
import json
import logging
import math

from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded, check_count, check_id, check_number, check_text, get_limits
from services.tokenizers.analysis import LoadedTokenizer, TokenizerError, analyze, open_tokenizer
from services.tokenizers.roundtrip import (  # noqa: F401  (re-exported: the explorer's tools in one place)
    ROUND_TRIP_CHARS,
    decode,
    parse_ids,
    round_trip,
)

logger = logging.getLogger(__name__)

COMPARE_CHARS = 5_000
MAX_BATCH = 4
MAX_COMPARE = 4  # the refusal says 'four'
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
    texts = _batch_texts(texts, pair)
    if padding not in PADDING:
        raise TokenizerError(f"Padding must be one of {', '.join(PADDING)}.")
    if truncation not in TRUNCATION:
        raise TokenizerError(f"Truncation must be one of {', '.join(TRUNCATION)}.")
    if padding_side not in ("left", "right"):
        raise TokenizerError("The padding side is left or right.")
    cap = get_limits().sequence_tokens
    max_length = check_number(max_length or None, "The maximum length", cap, 1)
    pad_to_multiple_of = check_number(pad_to_multiple_of or None, "Pad to a multiple of", cap, 1)
    stride = check_number(stride or 0, "The stride", cap)
    if (padding == "max_length" or truncation != "do_not_truncate") and not max_length:
        raise TokenizerError("Set a maximum length: padding to a length and truncation both need one.")
    if truncation == "only_second" and not (pair or "").strip():
        raise TokenizerError("'only_second' truncates the second text of a pair: type a paired text too.")
    if return_overflowing_tokens and truncation == "do_not_truncate":
        raise TokenizerError("Overflow only exists when texts are truncated: choose a truncation strategy.")
    if stride and max_length and stride >= max_length:
        raise TokenizerError("The stride must be smaller than the maximum length.")
    tok = open_tokenizer(tokenizer, owner)
    if padding != "do_not_pad" and tok.hf.pad_token_id is None:
        raise TokenizerError(
            f"{tok.id} has no padding token, so it cannot pad a batch (models like GPT-2 pad with their end token "
            "after setting `tokenizer.pad_token = tokenizer.eos_token`). Choose 'do_not_pad'."
        )
    if truncation != "do_not_truncate":
        _check_rows(tok, texts, pair, truncation, max_length, stride, add_special_tokens, return_overflowing_tokens)
    pairs = [pair] * len(texts) if (pair or "").strip() else None
    try:
        with tok.lock:  # a call sets padding/truncation on the shared backend, put back even when it fails
            try:
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
            finally:
                tok.hf.backend_tokenizer.no_padding()
                tok.hf.backend_tokenizer.no_truncation()
    except PlaygroundError:
        raise
    except BaseException as err:  # the Rust tokenizer panics (a BaseException) on some stride settings
        if not isinstance(err, Exception) and type(err).__name__ != "PanicException":
            raise
        logger.info("Batch encode refused: %s", err)
        message = str(err).split("\n")[0]
        raise TokenizerError(f"The tokenizer refused these settings: {message}") from err
    cells, cap = sum(len(ids) for ids in encoded["input_ids"]), get_limits().tokenize_chars
    if cells > cap:  # padding a long text's length onto every row: the answer lists each padded position
        raise LimitExceeded(
            f"This batch comes to {cells:,} tokens with its padding; a batch answer lists at most {cap:,}: choose "
            "'do_not_pad', or send shorter texts."
        )
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


def batch_settings(settings: dict | str | None) -> dict:
    """The settings of an API call to `batch_encode`: a dict or the same as a JSON object; a sentence otherwise."""
    if settings is None or settings == "":
        return {}
    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except ValueError as err:
            raise TokenizerError(
                'The settings are not valid JSON: send an object such as {"padding": "longest"}.'
            ) from err
    if not isinstance(settings, dict):
        raise TokenizerError('The settings must be an object such as {"padding": "max_length", "max_length": 16}.')
    known = [n for n in inspect.signature(batch_encode).parameters if n not in ("tokenizer", "texts", "owner")]
    unknown = sorted(str(k) for k in settings if k not in known)
    if unknown:
        raise TokenizerError(f"Unknown batch setting(s): {', '.join(unknown)[:200]}. Known: {', '.join(known)}.")
    return settings


def _batch_texts(texts, pair: str | None) -> list[str]:
    """The batch's texts: 1 to MAX_BATCH of them, with their paired text at most `tokenize_chars` characters in all."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list | tuple) or not all(t is None or isinstance(t, str) for t in texts):
        raise TokenizerError("The batch's texts must be a list of texts, such as ['Hello', 'A longer one'].")
    if pair is not None and not isinstance(pair, str):
        raise TokenizerError("The paired text must be a text.")
    texts = [t for t in texts if t is not None and t.strip()]
    if not texts:
        raise TokenizerError("Type at least one text for the batch.")
    if len(texts) > MAX_BATCH:
        raise TokenizerError(f"The batch view takes at most {MAX_BATCH} texts; you gave {len(texts)}.")
    total = sum(len(t) for t in texts) + len(pair or "") * len(texts)
    cap = get_limits().tokenize_chars
    if total > cap:
        raise LimitExceeded(
            f"The batch is {total:,} characters long (its paired text counted once for each text); at most {cap:,} "
            "are accepted, since the answer lists every token."
        )
    return texts


def _rows(n: int, keep: int, stride: int) -> int:
    """Rows a sequence of `n` tokens is cut into, `keep` tokens a row, each overlapping the last by `stride`."""
    if n <= keep:
        return 1
    if keep <= 0:
        raise TokenizerError("The maximum length leaves no room for the text: raise it, or shorten the paired text.")
    if keep <= stride:
        raise TokenizerError(
            f"The stride ({stride}) must be smaller than the {keep} text tokens a row holds once the special tokens "
            "(and a paired text) are counted: lower the stride or raise the maximum length."
        )
    return 1 + math.ceil((n - keep) / (keep - stride))


def _check_rows(
    tok: LoadedTokenizer,
    texts: list[str],
    pair,
    truncation: str,
    max_length: int,
    stride: int,
    special: bool,
    overflow: bool,
) -> None:
    """Refuse, before encoding, truncation settings the Rust tokenizer would panic on, and overflow rows that would
    list more than `tokenize_chars` tokens (overlapping rows repeat tokens; a pair with longest_first multiplies)."""
    paired = bool((pair or "").strip())
    room = max_length - (tok.hf.num_special_tokens_to_add(pair=paired) if special else 0)
    second = len(tok.backend.encode(pair, add_special_tokens=False).ids) if paired else 0
    rows = 0
    for text in texts:
        first = len(tok.backend.encode(text, add_special_tokens=False).ids)
        if not paired:
            rows += _rows(first, room, stride)
        elif truncation == "only_first":
            rows += _rows(first, room - second, stride)
        elif truncation == "only_second":
            rows += _rows(second, room - first, stride)
        else:  # longest_first: the shorter keeps its length (at most half the room); every pair of rows combines
            short, long = sorted((first, second))
            keep_short = short if short <= room // 2 or short + long <= room else room // 2
            rows += _rows(short, keep_short, stride) * _rows(long, room - keep_short, stride)
    cap = get_limits().tokenize_chars
    if overflow and rows * max_length > cap:
        raise LimitExceeded(
            f"These settings cut the batch into about {rows:,} rows of {max_length:,} tokens; a batch answer lists at "
            f"most {cap:,} tokens: lower the stride, raise the maximum length, or leave out the overflowing tokens."
        )


# ---- chat templates --------------------------------------------------------------------------------------------


def parse_conversation(value: str | list) -> list[dict]:
    """Messages from JSON (a list of {role, content}) or from lines such as 'user: Hello'; `prompt_chars` at most."""
    cap = get_limits().prompt_chars
    check_text(value, "That conversation", cap)
    if isinstance(value, list):
        messages = value
        check_count(messages, "messages")
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
    check_count(messages, "messages")
    check_text("".join(m["content"] for m in messages), "That conversation", cap)
    return messages


def chat(tokenizer: str, conversation: str | list, add_generation_prompt: bool = True, owner: str | None = None):
    """The conversation rendered through the tokenizer's chat template, and that text tokenized."""
    messages = parse_conversation(conversation)
    tok = open_tokenizer(tokenizer, owner)
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
    """Vocabulary size, special tokens, tokens matching a text or an id, and BPE merges that match.

    The query is a short text (`item_chars`); `limit` rows are returned (1 to 1,000)."""
    if query is not None and not isinstance(query, str):
        raise TokenizerError("The search must be a text or an id.")
    query = check_text((query or "").strip(), "That search", get_limits().item_chars)
    limit = check_number(limit or 200, "The number of rows", 1000, 1)
    tok = open_tokenizer(tokenizer, owner)
    entries = tok.readable_vocab
    matches = []
    if query.isascii() and query.isdigit() and int(query) < tok.vocab_size and tok.backend.id_to_token(int(query)):
        i = int(query)
        matches += [e for e in entries if e[0] == i][:1]
    needle = query.lower()
    if query:
        matches += [e for e in entries if (needle in e[2].lower() or needle in e[1].lower()) and e not in matches]
    else:
        matches = entries
    merges = tok.spec.get("model", {}).get("merges") or []
    merge_rows = []
    for rank, merge in enumerate(merges):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        if not query or query in left + right or needle in (left + right).lower():
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
    if not isinstance(tokenizers, list | tuple) or not all(t is None or isinstance(t, str) for t in tokenizers):
        raise TokenizerError("The tokenizers to compare must be a list of names, such as ['all-minilm-l6-v2', ...].")
    names = [t.strip() for t in tokenizers if t and t.strip()]
    if len(names) < 2:
        raise TokenizerError("Pick at least two tokenizers to compare.")
    if len(names) > MAX_COMPARE:
        raise TokenizerError(f"Compare at most four tokenizers at a time; {len(names):,} were picked.")
    names = [check_id(name, "That tokenizer name") for name in names]
    if len(set(names)) != len(names):
        raise TokenizerError("The same tokenizer is picked twice: pick different ones.")
    text = check_text(text or "", "That text")
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
