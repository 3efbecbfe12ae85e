"""Bytes behind tokens: GPT-2's byte-to-character table, and bytes shown as text without replacement characters."""

from __future__ import annotations

import functools


@functools.cache
def byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable character table, inverted (so 'Ġ' -> 0x20)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=False)}


def readable(raw: bytes) -> str:
    """Bytes as text, with any bytes that do not form a whole character shown as <E2 80>."""
    text = raw.decode("utf-8", errors="replace")
    if "\ufffd" not in text or b"\xef\xbf\xbd" in raw:
        return text
    out, i = [], 0
    while i < len(raw):
        for size in (4, 3, 2, 1):
            try:
                out.append(raw[i : i + size].decode("utf-8"))
                i += size
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"<{raw[i]:02X}>")
            i += 1
    return "".join(out)
