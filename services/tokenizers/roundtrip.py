"""Decoding ids back to text, and the round trip: where ``decode(encode(text))`` differs from the text, and why.

Differences are found word by word (a greedy re-synchronising walk, linear on real text) and split inside a
changed region with a character diff, so each changed word gets its own reason: lowercased, accents stripped,
unknown token, NFKC, spaces, invisible characters.

Both check what they were sent before loading or tokenizing: at most `sequence_tokens` ids to decode, a text of
at most `text_chars` for the round trip (`services.core.limits`).
"""

from __future__ import annotations

import bisect
import difflib
import re
import unicodedata

from services.core.limits import LimitExceeded, check_text, get_limits
from services.tokenizers.analysis import LoadedTokenizer, TokenizerError, open_tokenizer
from services.tokenizers.bytes import broken_runs, byte_list

ROUND_TRIP_CHARS = 20_000


def parse_ids(value: str | list) -> list[int]:
    """Token ids from '101, 7592 2088', '[101, 7592]' or a list; a sentence for anything else.

    At most `sequence_tokens` ids (counted before any is read)."""
    cap = get_limits().sequence_tokens
    if isinstance(value, list):
        items = value
    else:
        if not isinstance(value, str | None):
            raise TokenizerError("Send the token ids as a text such as '101, 7592' or as a list of numbers.")
        text = check_text((value or "").strip(), "That list of ids", cap * 12)  # an id and its separator: <12 chars
        if not text:
            raise TokenizerError("Type some token ids to decode, such as 101, 7592, 102.")
        items = [p for p in re.split(r"[\s,;\[\]]+", text) if p]
    if len(items) > cap:
        raise LimitExceeded(f"{len(items):,} ids were sent; at most {cap:,} are decoded at once.")
    ids = []
    for item in items:
        word = str(item).strip()
        if isinstance(item, bool) or not (word.isascii() and word.lstrip("-").isdigit() and len(word) <= 12):
            raise TokenizerError(f"'{word[:20]}' is not a token id: ids are whole numbers such as 101 or 7592.")
        ids.append(int(word))
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
    """Ids in, text out, with each id's vocabulary string, bytes and the text it stands for.

    A piece (or the text) with bytes that are not a whole character is marked `incomplete`, with a `note` that
    names its bytes (instead of a bare replacement character)."""
    ids = parse_ids(ids)
    tok = open_tokenizer(tokenizer, owner)
    _check_ids(tok, ids)
    text = tok.hf.decode(ids, skip_special_tokens=skip_special_tokens)
    pieces, segments = [], [b""]
    for i in ids:
        token = tok.backend.id_to_token(i)
        special = i in tok.special_ids
        raw = b"" if special else tok.token_bytes(token)
        piece = {"id": i, "token": token, "special": special, "text": tok.hf.decode([i]) if not special else token}
        runs = broken_runs(raw) if "\ufffd" in piece["text"] else []
        piece.update(bytes=raw.hex(" ").upper(), incomplete=bool(runs), note=_incomplete_note(runs))
        pieces.append(piece)
        if special and not skip_special_tokens:
            segments.append(b"")  # a special token's text sits between the bytes on either side
        else:
            segments[-1] += raw
    # A byte piece without the rest of its character decodes to a bare "\ufffd": say which bytes are missing a part.
    runs = [r for seg in segments for r in broken_runs(seg)] if "\ufffd" in text else []
    note = ""
    if runs:
        many = f"{len(runs)} incomplete UTF-8 sequences" if len(runs) > 1 else "an incomplete UTF-8 sequence"
        note = (
            f"The text has {many} ({'; '.join('bytes ' + byte_list(r) for r in runs)}), shown as \ufffd: a "
            "character split over several tokens decodes only with all of its pieces."
        )
    return {"text": text, "pieces": pieces, "incomplete": [r.hex(" ").upper() for r in runs], "note": note}


def _incomplete_note(runs: list[bytes]) -> str:
    if not runs:
        return ""
    if len(runs) == 1:
        return f"an incomplete UTF-8 sequence: bytes {byte_list(runs[0])}"
    return "incomplete UTF-8 sequences: bytes " + " and ".join(byte_list(r) for r in runs)


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
    text = check_text(text or "", "That text")
    tok = open_tokenizer(tokenizer, owner)
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
