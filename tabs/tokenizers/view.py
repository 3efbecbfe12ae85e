"""HTML for the Tokenizer explorer, drawn from the plain data `services.tokenizers.analysis` returns.

Tokens are coloured by id (the same id has the same colour everywhere); whitespace and invisible characters are
drawn as markers; tokens that split one character (byte-level BPE) are drawn together as one striped group, so no
"\ufffd" ever appears. Hovering or focusing (clicking) a token shows its id, vocabulary string, offsets and bytes.
"""

from __future__ import annotations

import html
import itertools
import zlib
from collections import Counter

import regex

_GRAPHEME = regex.compile(r"\X")
_MARKERS = {" ": "·", "\t": "→", "\r": "␍"}


def hue(token_id: int) -> int:
    """A colour hue per id: the golden angle spreads neighbouring ids far apart on the colour wheel."""
    return int(token_id * 137.508) % 360


def visible(text: str) -> str:
    """Escaped text with spaces, tabs, newlines and invisible characters drawn as markers."""
    if text.isalnum():
        return html.escape(text)
    out = []
    for g in _GRAPHEME.findall(text):
        if g in _MARKERS:
            out.append(f"<i>{_MARKERS[g]}</i>")
        elif g == "\n" or g == "\r\n":
            out.append("<i>↵</i><br>")
        elif len(g) == 1 and (ord(g) < 0x20 or 0x7F <= ord(g) < 0xA0):
            out.append(f"<i>{chr(0x2400 + ord(g)) if ord(g) < 0x20 else f'x{ord(g):02X}'}</i>")
        elif len(g) == 1 and _invisible(g):
            out.append(f"<i class='zw'>U+{ord(g):04X}</i>")
        else:
            out.append(html.escape(g))
    return "".join(out)


def _invisible(char: str) -> bool:
    import unicodedata

    return unicodedata.category(char) in ("Cf", "Zl", "Zp", "Mn") or char in "\u00a0\u3000"


def _tip(tokens: list[dict]) -> str:
    lines = []
    for t in tokens:
        kind = " (special)" if t["special"] else " (unknown)" if t["unknown"] else ""
        lines.append(f"#{t['index']}  id {t['id']}{kind}")
        lines.append(f"vocab: {t['token']!r}")
        lines.append(f"chars {t['start']}–{t['end']}" + (f"  bytes {t['bytes']}" if t["bytes"] else ""))
    return html.escape("\n".join(lines), quote=True)


def _chip(tokens: list[dict], body: str, extra: str = "") -> str:
    first = tokens[0]
    cls = "tk"
    if len(tokens) > 1:
        cls += " grp"
        style = f"--h:{hue(first['id'])};--h2:{hue(tokens[1]['id'])}"
        body += f"<sub>{len(tokens)}</sub>"
    else:
        style = f"--h:{hue(first['id'])}"
    if first["special"]:
        cls += " sp"
    if any(t["unknown"] for t in tokens):
        cls += " unk"
    return f'<span class="{cls}{extra}" style="{style}" tabindex="0" data-tip="{_tip(tokens)}">{body}</span>'


def spans_html(view: dict, show_ids: bool = False) -> str:
    """The text as coloured token spans (or as token ids), in token order."""
    tokens, text = view["tokens"], view["text"]
    if not tokens:
        return "<div class='pg-empty'>No tokens: type some text above.</div>"
    if show_ids:
        chips = [_chip([t], str(t["id"])) for t in tokens]
        return _root("pg-toks ids", " ".join(chips))
    group_of = {g[2][0]: g for g in view["groups"]}
    in_group = {i for g in view["groups"] for i in g[2]}
    out, pos = [], 0
    for t in tokens:
        i = t["index"]
        if t["end"] <= t["start"]:
            out.append(_chip([t], html.escape(t["token"]), " ghost"))
        elif i in group_of:
            start, end, members = group_of[i]
            if start > pos:
                out.append(f"<span class='gap'>{visible(text[pos:start])}</span>")
            out.append(_chip([tokens[m] for m in members], visible(text[start:end])))
            pos = end
        elif i not in in_group:  # not reached: every token with text is in a group
            continue
    if pos < len(text):
        out.append(f"<span class='gap'>{visible(text[pos:])}</span>")
    return _root("pg-toks", "".join(out), dir="ltr")


def _root(cls: str, body: str, **attrs: str) -> str:
    """The outer element of a big view. Its tag name changes with the content, so that Gradio replaces the old view
    in one step instead of comparing thousands of chips node by node (which costs more than drawing them)."""
    tag = f"pg-v{zlib.crc32(body.encode('utf-8', 'surrogatepass')) % 16}"
    extra = "".join(f" {k}='{v}'" for k, v in attrs.items())
    return f"<{tag} class='{cls}'{extra}>{body}</{tag}>"


def counts_html(view: dict) -> str:
    c = view["counts"]
    special, ordinary = c["special_tokens"], c["text_tokens"]
    per_char, per_byte = "higher = fewer tokens for the same text", "fair across scripts"
    if special:  # the ratios leave special tokens (and any text they cover) out: say so, with what is divided
        per_char = f"{c['text_characters']:,} characters ÷ {ordinary:,} ordinary tokens (special ones left out)"
        per_byte = f"{c['text_bytes']:,} bytes ÷ {ordinary:,} ordinary tokens"
    cards = [
        ("Tokens", f"{c['tokens']:,}", f"{ordinary:,} ordinary + {special:,} special" if special else "no special"),
        ("Characters", f"{c['characters']:,}", f"{c['bytes']:,} bytes (UTF-8)"),
        ("Chars / token", f"{c['chars_per_token']}", per_char),
        ("Bytes / token", f"{c['bytes_per_token']}", per_byte),
        ("Unknown", f"{c['unknown']:,}", "text the tokenizer could not represent"),
        ("Vocabulary", f"{view['vocab_size']:,}", view["kind"] + (" · byte-level" if view["byte_level"] else "")),
    ]
    body = "".join(
        f"<div class='pg-stat{' bad' if label == 'Unknown' and c['unknown'] else ''}'><b>{value}</b>"
        f"<span>{label}</span><small>{html.escape(note)}</small></div>"
        for label, value, note in cards
    )
    note = ""
    if view["truncated_view"]:
        note = (
            f"<div class='pg-note'>Showing the first {len(view['text']):,} of {c['characters']:,} characters; "
            "the counts cover all of it.</div>"
        )
    return f"<div class='pg-stats'>{body}</div>{note}"


def markers_md(notes: list[str]) -> str:
    base = "Hover or click a token for its id, vocabulary string, character offsets and bytes. `·` is a space, `→` a tab, `↵` a line break; a striped token with a small number is a character split over that many tokens."  # noqa: E501
    return "\n".join(["- " + base] + ["- " + n for n in notes])


_NO_PRE = "<i>no pre-tokenizer: the model sees the whole text</i>"


def stages_html(stages: dict) -> str:
    pieces = stages["pieces"][:400]
    piece_html = " ".join(
        f"<span class='pc' title='chars {p['start']}–{p['end']}'>{visible(p['piece'])}</span>" for p in pieces
    )
    more = f" … ({len(stages['pieces']) - 400:,} more)" if len(stages["pieces"]) > 400 else ""
    model = " ".join(f"<code>{html.escape(t)}</code>" for t in stages["model_tokens"][:400])
    added = (
        ", ".join(
            f"<code>{html.escape(a['token'])}</code> at position {a['position']}" for a in stages["added_tokens"]
        )
        or "nothing"
    )
    changed = "" if stages["changed_by_normalizer"] else " <small>(unchanged)</small>"
    type_ids = sorted(set(stages["type_ids"]))
    return (
        "<ol class='pg-stages'>"
        f"<li><b>Normalizer</b>: {html.escape(stages['normalizer'])}{changed}"
        f"<div class='pg-box'>{visible(stages['normalized'][:3000])}</div></li>"
        f"<li><b>Pre-tokenizer</b>: {html.escape(stages['pre_tokenizer'])}: {len(stages['pieces']):,} pieces"
        f"<div class='pg-box'>{piece_html or _NO_PRE}{more}</div></li>"
        f"<li><b>Model</b>: {html.escape(stages['model'])}: {len(stages['model_tokens']):,} tokens"
        f"<div class='pg-box'>{model}</div></li>"
        f"<li><b>Post-processor</b>: {html.escape(stages['post_processor'])}: adds {added}; "
        f"token type ids used: {type_ids}</li></ol>"
    )


def token_rows(view: dict, limit: int = 500) -> list[list]:
    return [
        [t["index"], t["id"], t["token"], t["readable"], t["start"], t["end"], t["bytes"], _flag(t)]
        for t in view["tokens"][:limit]
    ]


def _flag(t: dict) -> str:
    return "special" if t["special"] else "unknown" if t["unknown"] else ""


# ---- compare --------------------------------------------------------------------------------------------------


def _items(row: dict, length: int) -> list[tuple[int, int, list[int] | None]]:
    """Groups and the gaps between them, covering the whole text."""
    items, pos = [], 0
    for start, end, members in row["groups"]:
        if start > pos:
            items.append((pos, start, None))
        items.append((start, end, members))
        pos = end
    if pos < length:
        items.append((pos, length, None))
    return items


def compare_html(result: dict, line_chars: int = 60) -> str:
    """Tokenizers as rows of one table per line of text, each token spanning the characters it covers."""
    text, rows = result["text"], result["rows"]
    length = len(text)
    row_items = [_items(r, length) for r in rows]
    cuts = [{0, length} | {b for s, e, _ in items for b in (s, e)} for items in row_items]
    bounds = sorted(set.union(*cuts))
    shared = set.intersection(*cuts)
    lines, start = [], 0
    for b in bounds[1:]:
        # A line ends at a cut every tokenizer makes, after a newline or ~60 characters, never leaving a stub.
        long_enough = b - start >= line_chars and length - b >= 12
        if b in shared and (long_enough or "\n" in text[start:b] or b == length):
            lines.append((start, b))
            start = b
    blocks = []
    for l0, l1 in lines:
        segs = [b for b in bounds if l0 <= b <= l1]
        head = "".join(f"<td class='seg'>{visible(text[a:b])}</td>" for a, b in itertools.pairwise(segs))
        body = [f"<tr><th></th>{head}</tr>"]
        for row, items, mine in zip(rows, row_items, cuts, strict=True):
            cells = []
            for s, e, members in items:
                if e <= l0 or s >= l1:
                    continue
                span = sum(1 for a in segs if s <= a < e)
                diff = " cut" if s in mine and s not in shared else ""
                if members is None:
                    cells.append(f"<td colspan='{span}' class='gapc{diff}'></td>")
                else:
                    toks = [row["tokens"][m] for m in members]
                    chip = _chip(toks, visible(text[s:e]))
                    cells.append(f"<td colspan='{span}' class='tc{diff}'>{chip}</td>")
            name = html.escape(row["tokenizer"], quote=True)  # the full name, wrapped by the CSS, never cut
            body.append(f"<tr><th title='{name}'>{name}</th>{''.join(cells)}</tr>")
        blocks.append(f"<table class='pg-align'>{''.join(body)}</table>")
    more = "<div class='pg-note'>Showing the first part of the text; the counts cover all of it.</div>"
    return (
        "<div class='pg-note'>Each tokenizer is a row; a token spans the characters it covers. "
        "<span class='cut-key'>A red edge</span> marks a cut that not every tokenizer makes.</div>"
        + "".join(blocks)
        + (more if result["truncated_view"] else "")
    )


def compare_rows(result: dict) -> list[list]:
    out = []
    for row in result["rows"]:
        c = row["counts"]
        out.append(
            [
                row["tokenizer"],
                row["kind"],
                row["vocab_size"],
                c["tokens"],
                c["chars_per_token"],
                c["bytes_per_token"],
                c["unknown"],
                len(row["different_cuts"]),
            ]
        )
    return out


# ---- vocabulary, decode ---------------------------------------------------------------------------------------


def vocab_info_html(result: dict, query: str) -> str:
    """The vocabulary's summary line: size, merges and its special tokens (escaped: `<repo_name>` is a token)."""
    specials = ", ".join(f"<code>{html.escape(s['token'])}</code> {s['id']}" for s in result["special_tokens"][:40])
    merges = f", {result['merges_total']:,} merges" if result["merges_total"] else ""
    found = f"{result['match_count']:,} match" + ("es" if result["match_count"] != 1 else "")
    return (
        f"<div class='pg-note'><b>{html.escape(result['tokenizer'])}</b>: {html.escape(result['kind'])}, "
        f"{result['vocab_size']:,} tokens{merges}. Special tokens: {specials or 'none'}. "
        f"{found if query else 'Showing the first tokens by id.'} (up to 200 shown)</div>"
    )


def vocab_rows(result: dict) -> list[list]:
    return [[m["id"], m["token"], m["readable"]] for m in result["matches"]]


def decode_rows(result: dict, limit: int = 2000) -> list[list]:
    """One row per id; a byte piece that is not a whole character says so and names its bytes."""
    return [
        [p["id"], p["token"], f"\ufffd ({p['note']})" if p.get("incomplete") else p["text"]]
        for p in result["pieces"][:limit]
    ]


def decode_note_html(result: dict) -> str:
    return f"<div class='pg-warn'>{html.escape(result['note'])}</div>" if result.get("note") else ""


# ---- batch, round trip ----------------------------------------------------------------------------------------


def batch_html(result: dict) -> str:
    blocks = []
    for row in result["rows"]:
        title = f"Text {row['sample'] + 1}" + (
            " — overflow (the part cut off, with stride overlap)" if row["overflow"] else ""
        )
        cols = range(len(row["input_ids"]))
        lines = [("position", list(cols)), ("token", row["tokens"]), ("input_ids", row["input_ids"])]
        lines.append(("attention_mask", row["attention_mask"]))
        if row["token_type_ids"]:
            lines.append(("token_type_ids", row["token_type_ids"]))
        lines.append(("word_ids", ["–" if w is None else w for w in row["word_ids"]]))
        body = []
        for name, values in lines:
            cells = "".join(
                f"<td class='{'pad' if row['attention_mask'][k] == 0 else ''}'>{html.escape(str(v))}</td>"
                for k, v in enumerate(values)
            )
            body.append(f"<tr><th>{name}</th>{cells}</tr>")
        blocks.append(f"<div class='pg-batch'><b>{title}</b><table>{''.join(body)}</table></div>")
    legend = (
        "<div class='pg-note'>Grey columns are padding (attention_mask 0: the model ignores them). "
        "word_ids says which word of the text each token came from (– for special and padding tokens).</div>"
    )
    return legend + "".join(blocks)


def round_trip_html(result: dict, text: str) -> str:
    if result["exact"]:
        return (
            "<div class='pg-ok'>✓ Exact: <code>decode(encode(text))</code> gives back the text character for "
            "character.</div>"
        )
    reasons = Counter(d["reason"] for d in result["diffs"])
    summary = "; ".join(f"{r} ({n})" for r, n in reasons.most_common())
    shown = text[: result["checked_chars"]]
    out, pos = [], 0
    for d in result["diffs"]:
        out.append(visible(shown[pos : d["start"]]))
        tip = html.escape(d["reason"], quote=True)
        out.append(
            f"<span class='df' title='{tip}'><del>{visible(d['original']) or '∅'}</del>"
            f"<ins>{visible(d['decoded']) or '∅'}</ins></span>"
        )
        pos = d["end"]
    out.append(visible(shown[pos:]))
    note = f" Checked the first {result['checked_chars']:,} characters." if result.get("truncated") else ""
    return (
        f"<div class='pg-warn'>✗ Not exact: {len(result['diffs']):,} place(s) differ — {html.escape(summary)}.{note}"
        "</div><div class='pg-diff'>" + "".join(out) + "</div>"
    )
