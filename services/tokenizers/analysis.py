"""Tokenizers: what they do to a text.

`tokenize()` is the stable contract: one dict per token with the exact ids ``AutoTokenizer(...)(text)`` gives.
`analyze()` adds what the explorer shows: bytes, readable forms, groups of tokens that split one character,
counts and the pipeline stages. Which tokenizers exist and how they load is `services.tokenizers.loading`
(re-exported here); decode, batches, chat templates, the vocabulary and comparing live in
`services.tokenizers.tools`; training lives in `services.tokenizers.training`.

Every entry point checks its inputs against the caps of `services.core.limits` before loading or tokenizing: a
tokenizer
name is a short id (`open_tokenizer`), `tokenize()` (whose answer lists every token) takes `tokenize_chars`, the
analysis views `text_chars` (the view of a 1 MB text shows its beginning and counts all of it).
"""

from __future__ import annotations

import json
import logging
import unicodedata

from services.core.limits import check_id, check_text, get_limits
from services.tokenizers.bytes import readable
from services.tokenizers.loading import (  # noqa: F401  (re-exported: the public face of tokenizers)
    DEMO_UNIGRAM,
    HUB_TOKENIZERS,
    TOKENIZER_PREFIX,
    LoadedTokenizer,
    TokenizerEntry,
    TokenizerError,
    catalog,
    load_tokenizer,
    tokenizer_cache,
    tokenizers_root,
    trained_folder,
    trained_tokenizers,
    warm_up,
)

logger = logging.getLogger(__name__)

RENDER_CHARS = 20_000  # the view shows this much of a long text; counts always cover all of it
STAGE_CHARS = 5_000  # the pipeline stages are shown for the beginning of the text


# ---- tokenizing -----------------------------------------------------------------------------------------------


def open_tokenizer(tokenizer: str, owner: str | None = None) -> LoadedTokenizer:
    """`load_tokenizer` for a name a visitor sent: a short id, checked before anything is loaded."""
    return load_tokenizer(check_id(tokenizer, "That tokenizer name"), owner)


def _encode(tok: LoadedTokenizer, text: str, add_special_tokens: bool):
    if not isinstance(text, str):
        raise TokenizerError("The text must be a string.")
    return tok.backend.encode(text, add_special_tokens=add_special_tokens)


def _positions(encoding, text: str) -> list[tuple[int, int]]:
    """Offsets, with text-less tokens placed where they sit (start == end): added [CLS] or </s>, and a lone
    SentencePiece "▁" that only marks the start of a word (its offsets overlap the word that follows)."""
    out = []
    last = 0
    for (start, end), token in zip(encoding.offsets, encoding.tokens, strict=True):
        if token == "\u2581" and end > start and not text[start:end].isspace():
            end = start
        if end <= start:
            start = end = max(last, start) if token == "\u2581" else last
        else:
            last = end
        out.append((start, end))
    return out


def tokenize(tokenizer: str, text: str, add_special_tokens: bool = True, owner: str | None = None) -> list[dict]:
    """One dict per token, in order: ``id``, ``token`` (raw vocabulary string), ``start``, ``end``, ``special``.

    The ids are exactly ``AutoTokenizer.from_pretrained(...)(text, add_special_tokens=...)["input_ids"]``.
    At most `tokenize_chars` characters: the answer lists every token.
    """
    check_text(text, "That text", get_limits().tokenize_chars)
    tok = open_tokenizer(tokenizer, owner)
    encoding = _encode(tok, text, add_special_tokens)
    return [
        {"id": i, "token": t, "start": s, "end": e, "special": special}
        for i, t, (s, e), special in zip(
            encoding.ids, encoding.tokens, _positions(encoding, text), _special(tok, encoding), strict=False
        )
    ]


def _special(tok: LoadedTokenizer, encoding) -> list[bool]:
    """Special tokens: added by the post-processor, or from the special vocabulary (an [UNK] is "unknown" instead)."""
    special, unk = tok.special_ids, tok.unk_id
    return [
        bool(m) or (i in special and i != unk)
        for i, m in zip(encoding.ids, encoding.special_tokens_mask, strict=False)
    ]


def _graphemes(text: str) -> list[int]:
    """Grapheme cluster boundaries of `text` (emoji with joiners, flags, combining marks stay whole)."""
    import regex

    return [m.end() for m in regex.finditer(r"\X", text)]


def _groups(positions: list[tuple[int, int]], text: str) -> list[tuple[int, int, list[int]]]:
    """Tokens merged into groups that cover whole graphemes: tokens that share or split a character go together.

    A group ending inside a character (a byte piece, or a combining accent the normalizer dropped) is widened to the
    end of that character; the next token joins it only when it starts before that end.
    """
    import bisect

    bounds = _graphemes(text)
    groups: list[list] = []
    for index, (start, end) in enumerate(positions):
        if end <= start:
            continue
        if groups and start < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][2].append(index)
        else:
            groups.append([start, end, [index]])
        k = bisect.bisect_left(bounds, groups[-1][1])
        if k < len(bounds):
            groups[-1][1] = bounds[k]
    return [(s, e, idx) for s, e, idx in groups]


def analyze(
    tokenizer: str,
    text: str,
    add_special_tokens: bool = True,
    owner: str | None = None,
    render_chars: int = RENDER_CHARS,
) -> dict:
    """Everything the explorer shows for one text: tokens (with bytes), groups, counts and stages.

    Counts cover the whole text (at most `text_chars`); tokens, groups and stages cover the first `render_chars`.
    """
    check_text(text, "That text")
    tok = open_tokenizer(tokenizer, owner)
    text = text or ""
    encoding = _encode(tok, text, add_special_tokens)
    ids = encoding.ids
    special = _special(tok, encoding)
    n_special = sum(special)
    n_text = len(ids) - n_special
    n_bytes = len(text.encode("utf-8", errors="surrogatepass"))
    shown = text[:render_chars]
    positions = _positions(encoding, text)
    tokens = []
    columns = zip(ids, encoding.tokens, encoding.type_ids, encoding.word_ids, positions, special, strict=False)
    for index, (i, raw, type_id, word, (s, e), mask) in enumerate(columns):
        if s > len(shown) or e > len(shown):
            break
        is_special = bool(mask)
        unknown = i == tok.unk_id and not is_special
        # An unknown token stands for the text it replaced; a special token stands for no text at all.
        data = b"" if is_special else shown[s:e].encode("utf-8") if unknown else tok.token_bytes(raw)
        tokens.append(
            {
                "index": index,
                "id": i,
                "token": raw,
                "start": s,
                "end": e,
                "special": is_special,
                "unknown": unknown,
                "text": shown[s:e],
                "bytes": data.hex(" ").upper(),
                "readable": raw if is_special else readable(data),
                "type_id": type_id,
                "word_id": word,
            }
        )
    # The ratios count the same thing on both sides: ordinary tokens, and the text they cover (the text of special
    # tokens such as a chat template's <|im_start|> is left out with them).
    special_text = [text[s:e] for (s, e), m in zip(positions, special, strict=False) if m and e > s]
    text_chars = len(text) - sum(len(t) for t in special_text)
    text_bytes = n_bytes - sum(len(t.encode("utf-8", errors="surrogatepass")) for t in special_text)
    counts = {
        "tokens": len(ids),
        "text_tokens": n_text,
        "special_tokens": n_special,
        "characters": len(text),
        "bytes": n_bytes,
        "text_characters": text_chars,
        "text_bytes": text_bytes,
        "chars_per_token": round(text_chars / n_text, 2) if n_text else 0.0,
        "bytes_per_token": round(text_bytes / n_text, 2) if n_text else 0.0,
        "unknown": sum(1 for i, m in zip(ids, special, strict=False) if i == tok.unk_id and not m),
    }
    return {
        "tokenizer": tok.id,
        "kind": tok.kind,
        "byte_level": tok.byte_level,
        "subword_prefix": tok.subword_prefix,
        "vocab_size": tok.vocab_size,
        "text": shown,
        "truncated_view": len(text) > len(shown),
        "counts": counts,
        "tokens": tokens,
        "groups": _groups([(t["start"], t["end"]) for t in tokens], shown),
        "stages": stages(tok, shown[:STAGE_CHARS], add_special_tokens),
    }


def _describe_component(component: dict | None) -> str:
    """A short human name for a normalizer / pre-tokenizer / post-processor entry of tokenizer.json."""
    if not component:
        return "none"
    kind = component.get("type", "?")
    if kind == "Sequence":
        parts = component.get("normalizers") or component.get("pretokenizers") or component.get("processors") or []
        return " → ".join(_describe_component(p) for p in parts) or "Sequence"
    flags = [k for k in ("lowercase", "strip_accents", "clean_text", "add_prefix_space") if component.get(k)]
    if kind == "TemplateProcessing":
        single = " ".join(
            p.get("SpecialToken", {}).get("id") or ("$" + p.get("Sequence", {}).get("id", "A"))
            for p in component.get("single", [])
        )
        return f"TemplateProcessing ({single})"
    return f"{kind} ({', '.join(flags)})" if flags else kind


def stages(tok: LoadedTokenizer, text: str, add_special_tokens: bool = True) -> dict:
    """What each stage of the pipeline does: normalizer, pre-tokenizer, model, post-processor."""
    backend = tok.backend
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
    pieces = backend.pre_tokenizer.pre_tokenize_str(normalized) if backend.pre_tokenizer is not None else []
    bare = backend.encode(text, add_special_tokens=False)
    full = backend.encode(text, add_special_tokens=True)
    added = [
        {"position": pos, "token": t, "id": i}
        for pos, (t, i, m) in enumerate(zip(full.tokens, full.ids, full.special_tokens_mask, strict=False))
        if m and i in tok.special_ids
    ]
    added_by_post = max(0, len(full.ids) - len(bare.ids))
    return {
        "normalizer": _describe_component(tok.spec.get("normalizer")),
        "normalized": normalized,
        "changed_by_normalizer": normalized != text,
        "pre_tokenizer": _describe_component(tok.spec.get("pre_tokenizer")),
        "pieces": [{"piece": p, "start": s, "end": e} for p, (s, e) in pieces],
        "model": tok.kind,
        "model_tokens": bare.tokens,
        "post_processor": _describe_component(tok.spec.get("post_processor")),
        "added_tokens": added if add_special_tokens else [],
        "added_count": added_by_post if add_special_tokens else 0,
        "type_ids": full.type_ids if add_special_tokens else bare.type_ids,
    }


def explain_markers(tok: LoadedTokenizer) -> list[str]:
    """Plain-words notes on the marks a student sees in this tokenizer's vocabulary strings."""
    notes = []
    if tok.subword_prefix:
        notes.append(
            f"`{tok.subword_prefix}` starts a piece that continues the previous one inside the same word (WordPiece)."
        )
    if tok.byte_level:
        notes.append(
            "`Ġ` is a space and `Ċ` a newline: byte-level BPE maps every byte to a printable character, so a "
            "character that takes several bytes (é, emoji, CJK) can look like `Ã©` and be split over tokens."
        )
    if "\u2581" in json.dumps(tok.spec.get("pre_tokenizer"), ensure_ascii=False) or "Metaspace" in json.dumps(
        tok.spec.get("decoder")
    ):
        notes.append("`▁` stands for a space before the piece (SentencePiece).")
    return notes


def is_unusual(char: str) -> bool:
    """Characters drawn as a visible marker: controls and zero-width formatting characters."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
