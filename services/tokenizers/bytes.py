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


def _char_length(lead: int) -> int:
    """How many bytes a UTF-8 character starting with `lead` takes (0: not a valid first byte)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    return 4 if 0xF0 <= lead <= 0xF4 else 0


def broken_runs(raw: bytes) -> list[bytes]:
    """The runs of bytes in `raw` that do not form whole UTF-8 characters (a character split over tokens)."""
    runs, current, i = [], bytearray(), 0
    while i < len(raw):
        size = _char_length(raw[i])
        try:
            if not size:
                raise UnicodeDecodeError("utf-8", raw, i, i + 1, "not a first byte")
            raw[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            current.append(raw[i])
            i += 1
            continue
        if current:
            runs.append(bytes(current))
            current = bytearray()
        i += size
    if current:
        runs.append(bytes(current))
    return runs


def byte_list(raw: bytes) -> str:
    """Bytes as a visitor reads them: '0xE2 0x80'."""
    return " ".join(f"0x{b:02X}" for b in raw)
