"""The explorer's other tools: decode and round trip, batches with padding and truncation, chat templates, the
vocabulary browser, and comparing tokenizers on one text. All return plain data; the tab draws it.
"""

from __future__ import annotations

import bisect
import difflib
import json
import logging
import re
import unicodedata

from services.errors import PlaygroundError
from services.tokenizers import LoadedTokenizer, TokenizerError, analyze, load_tokenizer

logger = logging.getLogger(__name__)

ROUND_TRIP_CHARS = 20_000
COMPARE_CHARS = 5_000
MAX_BATCH = 4
ROLES = ("system", "user", "assistant", "tool")
PADDING = ("longest", "max_length", "do_not_pad")
TRUNCATION = ("do_not_truncate", "longest_first", "only_first", "only_second")


# ---- decode and round trip ------------------------------------------------------------------------------------


def parse_ids(value: str | list) -> list[int]:
    """Token ids from '101, 7592 2088', '[101, 7592]' or a list; a sentence for anything else."""
    if isinstance(value, list):
        items = value
    else:
        text = (value or "").strip()
        if not text:
            raise TokenizerError("Type some token ids to decode, such as 101, 7592, 102.")
        items = [p for p in re.split(r"[\s,;\[\]]+", text) if p]
    ids = []
    for item in items:
        try:
            ids.append(int(str(item).strip()))
        except ValueError:
            raise TokenizerError(f"'{item}' is not a token id: ids are whole numbers such as 101 or 7592.") from None
    return ids


def _check_ids(tok: LoadedTokenizer, ids: list[int]) -> None:
    size = tok.vocab_size
    for i in ids:
        if i < 0 or i >= size or tok.backend.id_to_token(i) is None:
            raise TokenizerError(
                f"{i} is not in the vocabulary of {tok.id}: its ids go from 0 to {size - 1:,}."
                if (i < 0 or i >= size)
                else f"{i} is not in the vocabulary of {tok.id} (that id is unused)."
            )


def decode(tokenizer: str, ids: str | list, skip_special_tokens: bool = False, owner: str | None = None) -> dict:
    """Ids in, text out, with each id's vocabulary string and the text it stands for."""
    tok = load_tokenizer(tokenizer, owner)
    ids = parse_ids(ids)
    _check_ids(tok, ids)
    text = tok.hf.decode(ids, skip_special_tokens=skip_special_tokens)
    pieces = []
    for i in ids:
        token = tok.backend.id_to_token(i)
        special = i in tok.special_ids
        pieces.append(
            {"id": i, "token": token, "special": special, "text": tok.hf.decode([i]) if not special else token}
        )
    return {"text": text, "pieces": pieces}


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _reason(original: str, decoded: str, tok: LoadedTokenizer) -> str:
    unk = tok.hf.unk_token
    if unk and unk in decoded:
        return f"unknown: the tokenizer had no piece for this and used {unk}"
    if not original.strip() and not decoded.strip():
        return "spaces changed" if decoded else "spaces or line breaks dropped"
    visible = "".join(c for c in original if unicodedata.category(c) not in ("Cc", "Cf"))
    if visible != original and visible.replace(" ", "") == decoded.replace(" ", ""):
        return "invisible characters removed by the normalizer"
    a, b = " ".join(original.split()), " ".join(decoded.split())
    spaces = " (and spaces changed)" if a != original or b != decoded else ""
    if a == b:
        return "spaces changed"
    if a.lower() == b:
        return "lowercased" + spaces
    if _strip_accents(a).lower() == b or _strip_accents(a) == b:
        return "accents stripped" + spaces
    if unicodedata.normalize("NFKC", a) == b or _strip_accents(unicodedata.normalize("NFKC", a)).lower() == b:
        return "Unicode normalisation (NFKC) changed the characters" + spaces
    if a.replace(" ", "") == b.replace(" ", ""):
        return "spaces changed"
    return "changed"


def _words(text: str) -> list[str]:
    """Text cut into words, runs of spaces and single characters: the units a round-trip difference is shown in."""
    import regex

    return regex.findall(r"\s+|\w+|\X", text)


def _starts(words: list[str]) -> list[int]:
    out = [0]
    for w in words:
        out.append(out[-1] + len(w))
    return out


def _align(a: list[str], b: list[str], window: int = 64, anchor: int = 2):
    """Differences between two word lists that mostly agree, as (a0, a1, b0, b1) spans.

    A greedy walk that re-synchronises on the nearest run of `anchor` equal words within `window`: linear on
    real text, where difflib's longest-match search is quadratic on repetitive text.
    """

    def synced(x: int, y: int) -> bool:
        if x >= len(a) or y >= len(b):
            return x >= len(a) and y >= len(b)
        if a[x] != b[y]:
            return False
        # One equal word re-synchronises; a space needs the next word to agree too (spaces alone align anything).
        k = min(anchor if a[x].isspace() else 1, len(a) - x, len(b) - y)
        return a[x : x + k] == b[y : y + k]

    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        found = None
        for total in range(1, 2 * window + 1):
            for di in range(max(0, total - window), min(total, window) + 1):
                if synced(i + di, j + total - di):
                    found = (di, total - di)
                    break
            if found:
                break
        if found is None:
            break
        yield i, i + found[0], j, j + found[1]
        i, j = i + found[0], j + found[1]
    if i < len(a) or j < len(b):
        yield i, len(a), j, len(b)


def _refine(words: list[str], decoded: str, limit: int = 40_000):
    """Split one changed region into word-sized differences: ((start, end) in the region, (start, end) decoded).

    A character diff of a short region (cheap there) says which words changed; each difference is widened to
    whole words of the original, so 'Héllo Wörld' -> 'hello world' gives two explained changes, not one.
    """
    original = "".join(words)
    if not original or not decoded or len(original) * len(decoded) > limit:
        return [((0, len(original)), (0, len(decoded)))]
    ops = difflib.SequenceMatcher(None, original, decoded, autojunk=False).get_opcodes()
    starts = _starts(words)

    def word_span(pos: int) -> tuple[int, int]:
        k = max(0, bisect.bisect_right(starts, pos) - 1)
        k = min(k, len(words) - 1)
        return starts[k], starts[k + 1]

    def to_decoded(pos: int, end: bool) -> int:
        for op, i1, i2, j1, j2 in ops:
            if i1 <= pos < i2 or (pos == i2 and end and op != "equal") or (pos == i2 == len(original)):
                return j1 + (pos - i1) if op == "equal" else (j2 if end else j1)
        return len(decoded)

    spans: list[list[int]] = []
    for op, i1, i2, _j1, _j2 in ops:
        if op == "equal":
            continue
        lo = word_span(i1)[0] if i1 < len(original) else word_span(len(original) - 1)[0]
        hi = word_span(max(i1, i2 - 1))[1]
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    out = []
    for lo, hi in spans:
        out.append(((lo, hi), (to_decoded(lo, False), to_decoded(hi, True))))
    return out or [((0, len(original)), (0, len(decoded)))]


def round_trip(tokenizer: str, text: str, owner: str | None = None) -> dict:
    """Does ``decode(encode(text))`` give the text back? If not, where and why it differs (word by word)."""
    tok = load_tokenizer(tokenizer, owner)
    text = text or ""
    decoded = tok.hf.decode(tok.backend.encode(text, add_special_tokens=False).ids)
    if decoded == text:
        return {"exact": True, "decoded": decoded, "diffs": [], "checked_chars": len(text), "truncated": False}
    original = text[:ROUND_TRIP_CHARS]
    truncated = len(text) > len(original)
    if truncated:
        decoded = tok.hf.decode(tok.backend.encode(original, add_special_tokens=False).ids)
    a, b = _words(original), _words(decoded)
    a_pos, b_pos = _starts(a), _starts(b)
    diffs = []
    for a0, a1, b0, b1 in _align(a, b):
        for (s0, s1), (t0, t1) in _refine(a[a0:a1], "".join(b[b0:b1])):
            before = original[a_pos[a0] + s0 : a_pos[a0] + s1]
            after = decoded[b_pos[b0] + t0 : b_pos[b0] + t1]
            diffs.append(
                {
                    "start": a_pos[a0] + s0,
                    "end": a_pos[a0] + s1,
                    "original": before,
                    "decoded": after,
                    "decoded_start": b_pos[b0] + t0,
                    "reason": _reason(before, after, tok),
                }
            )
    return {
        "exact": not diffs,
        "decoded": decoded,
        "diffs": diffs,
        "checked_chars": len(original),
        "truncated": truncated,
    }


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
