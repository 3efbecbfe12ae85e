"""The vectors of one RAG collection: ``vectors.npy`` (normalised float32 rows) and ``ids.npy`` (their chunk ids).

New rows are appended in place: the rows first, then the header's row count (numpy leaves room in the header for
it to grow), so adding a batch costs that batch, not the whole collection, and a reader sees the old rows or the
new ones, never half a row. Vectors are written before ids, so a reader takes as many vectors as there are ids.
Removing rows rewrites both files beside and renames them. Callers hold the collection's write lock.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def load(folder: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and their vectors (memory-mapped); empty arrays of width `dim` when there are none."""
    ids_path, vec_path = folder / "ids.npy", folder / "vectors.npy"
    for _attempt in range(3):  # a longer ids file than vectors file: a rewrite was renaming them, look again
        if not ids_path.exists():
            break
        ids, vectors = np.load(ids_path), np.load(vec_path, mmap_mode="r")
        if len(vectors) >= len(ids):
            return ids, vectors[: len(ids)]
        time.sleep(0.05)
    return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)


def append(folder: Path, ids: np.ndarray, vectors: np.ndarray) -> None:
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    ids_path, vec_path = folder / "ids.npy", folder / "vectors.npy"
    if ids_path.exists() and vec_path.exists():
        rows = len(np.load(ids_path, mmap_mode="r"))
        if _append_npy(vec_path, vectors, rows) and _append_npy(ids_path, ids, rows):
            return
        old_ids, old_vectors = load(folder, vectors.shape[1])  # a file numpy laid out otherwise: rewritten once
        ids, vectors = np.concatenate([old_ids, ids]), np.concatenate([np.asarray(old_vectors), vectors])
    save(folder, ids, vectors)


def drop(folder: Path, chunk_ids: list[int]) -> None:
    """Remove the rows of these chunks."""
    if chunk_ids:
        ids, vectors = load(folder, 384)
        keep = ~np.isin(ids, chunk_ids)
        save(folder, ids[keep], np.asarray(vectors)[keep])


def save(folder: Path, ids: np.ndarray, vectors: np.ndarray) -> None:
    # Written beside and renamed: a reader never sees half a file.
    for name, array in (("vectors.npy", vectors), ("ids.npy", ids)):
        tmp = folder / f".{name}.tmp.npy"
        np.save(tmp, array)
        tmp.replace(folder / name)


def _append_npy(path: Path, rows: np.ndarray, at: int) -> bool:
    """Write `rows` after the first `at` rows of an .npy file, then the header's new row count; False when the
    file cannot take them so (another layout, no room in the header)."""
    fmt = np.lib.format
    with open(path, "r+b") as handle:
        version = fmt.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            return False
        shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(handle)
        start = handle.tell()
        if fortran or dtype != rows.dtype or tuple(shape[1:]) != rows.shape[1:] or shape[0] < at:
            return False
        descr, new_shape = fmt.dtype_to_descr(dtype), (at + len(rows), *shape[1:])
        header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {new_shape!r}, }}"
        room = start - 8 - (2 if version == (1, 0) else 4)  # the header's length, padding and newline included
        if len(header) + 1 > room:
            return False
        handle.seek(start + at * dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
        handle.write(np.ascontiguousarray(rows).tobytes())
        handle.flush()
        handle.seek(start - room)
        handle.write((header.ljust(room - 1) + "\n").encode("latin1"))
    return True
