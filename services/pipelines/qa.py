"""Extractive question answering over `AutoModelForQuestionAnswering`, as transformers 4.x's pipeline did it.

transformers 5 removed `QuestionAnsweringPipeline`; `answer_question` re-implements its fast-tokenizer path so
that a model gives the same answers, character spans and scores it gave under 4.x (checked against answers
recorded with 4.57 in ``tests/data/qa/golden.json``). The 4.x quirks are kept on purpose, among them:

- a tokenizer that pads on the left puts the context first and masks nothing, so question and special tokens
  can be chosen as answers;
- `decode_spans` treats token 0 as allowed (``np.isin`` against a tuple of row and column indices);
- answers with the same text (ignoring case) have their scores added, so a score can pass 1, and keep the
  first span found; spans are character offsets and may end before they start (an empty answer);
- a single result is returned bare, even for a list of one pair or for ``top_k > 1`` when only one answer exists;
- `max_question_len` only ever mattered to slow tokenizers, so it changes nothing here.

Where it differs: 4.x could tell an omitted `doc_stride` or `max_seq_len` from an explicit one; here the default
values stand for "omitted", so an explicit ``doc_stride=128`` with ``max_seq_len < 256`` is shortened to half the
window (4.x kept 128) and an explicit ``max_seq_len=384`` is capped at the tokenizer's `model_max_length`. Blank
questions and contexts are refused with a `ValueError` (4.x refused only empty strings), and so is a question
that leaves no room for the windows' overlap (4.x let the Rust tokenizer panic), and so is a `max_seq_len` longer
than the tokenizer's `model_max_length` (4.x let the model fail on it). Windows of one length run through the
model together, 16 at a time.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_DEFAULT_DOC_STRIDE = 128
_DEFAULT_MAX_SEQ_LEN = 384
# Windows run through the model this many at a time, so a very long context needs bounded memory.
_WINDOW_BATCH = 16


def answer_question(
    model,
    tokenizer,
    question: str | list[str],
    context: str | list[str],
    *,
    top_k: int = 1,
    doc_stride: int = _DEFAULT_DOC_STRIDE,
    max_answer_len: int = 15,
    max_seq_len: int = _DEFAULT_MAX_SEQ_LEN,
    max_question_len: int = 64,
    handle_impossible_answer: bool = False,
    align_to_words: bool = True,
) -> dict | list:
    """Answer each question from its context with 4.x's output: ``{"score", "start", "end", "answer"}``.

    One pair gives one dict (a list of them when ``top_k > 1``); several pairs give a list of those. A list of
    questions with one context string asks every question of that context.
    """
    del max_question_len  # 4.x used it only with slow tokenizers
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}.")
    if max_answer_len < 1:
        raise ValueError(f"max_answer_len must be at least 1, not {max_answer_len}.")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("Question answering needs a fast (Rust `tokenizers`) tokenizer; this one is not.")
    pairs = _pairs(question, context)
    if max_seq_len == _DEFAULT_MAX_SEQ_LEN:
        max_seq_len = min(tokenizer.model_max_length, _DEFAULT_MAX_SEQ_LEN)
    elif max_seq_len > tokenizer.model_max_length:
        raise ValueError(
            f"max_seq_len ({max_seq_len}) is longer than this model reads at once ({tokenizer.model_max_length})."
        )
    if doc_stride == _DEFAULT_DOC_STRIDE:
        doc_stride = min(max_seq_len // 2, _DEFAULT_DOC_STRIDE)
    if doc_stride > max_seq_len:
        raise ValueError(f"doc_stride ({doc_stride}) must not be larger than max_seq_len ({max_seq_len}).")

    results = [
        _answer_one(
            model,
            tokenizer,
            q,
            c,
            top_k=top_k,
            doc_stride=doc_stride,
            max_answer_len=max_answer_len,
            max_seq_len=max_seq_len,
            handle_impossible_answer=handle_impossible_answer,
            align_to_words=align_to_words,
        )
        for q, c in pairs
    ]
    # 4.x unwrapped a batch of one, whatever its form
    return results[0] if len(results) == 1 else results


def _pairs(question: str | list[str], context: str | list[str]) -> list[tuple[str, str]]:
    """(question, context) pairs from the call's arguments, refusing what 4.x refused and blank texts."""
    if isinstance(question, list) and isinstance(context, str):
        pairs = [(q, context) for q in question]
    elif isinstance(question, list) and isinstance(context, list):
        if len(question) != len(context):
            raise ValueError(f"There are {len(question)} questions but {len(context)} contexts; give one each.")
        pairs = list(zip(question, context, strict=True))
    elif isinstance(question, str) and isinstance(context, str):
        pairs = [(question, context)]
    else:
        raise ValueError("Give a question and a context as two strings, or as two lists of the same length.")
    if not pairs:
        raise ValueError("There is no question to answer: the list of questions is empty.")
    for q, c in pairs:
        if not isinstance(q, str) or not q.strip():
            raise ValueError("The question is empty: please type a question.")
        if not isinstance(c, str) or not c.strip():
            raise ValueError("The context is empty: please give the text in which to look for the answer.")
    return pairs


def _answer_one(
    model,
    tokenizer,
    question: str,
    context: str,
    *,
    top_k: int,
    doc_stride: int,
    max_answer_len: int,
    max_seq_len: int,
    handle_impossible_answer: bool,
    align_to_words: bool,
) -> dict | list:
    """4.x's preprocess, forward and postprocess for one pair, with the windows run in batches."""
    question_first = tokenizer.padding_side == "right"
    _check_room(tokenizer, question, context, max_seq_len, doc_stride)
    encoded = tokenizer(
        text=question if question_first else context,
        text_pair=context if question_first else question,
        padding=False,
        truncation="only_second" if question_first else "only_first",
        max_length=max_seq_len,
        stride=doc_stride,
        return_token_type_ids=True,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    num_windows = len(encoded["input_ids"])
    logger.debug("Question answering over %d window(s) of at most %d tokens", num_windows, max_seq_len)

    min_null_score: float = 1000000  # 4.x's "large and positive" start value
    answers: list[dict[str, Any]] = []
    by_text: dict[str, dict[str, Any]] = {}  # 4.x merged answers whose texts differ only in case
    pre_topk = top_k * 2 + 10 if align_to_words else top_k  # aligning to words can merge candidates
    for index, start_logits, end_logits in _window_logits(model, tokenizer, encoded):
        p_mask = _p_mask(tokenizer, encoded, index, question_first)
        attention_mask = np.array(encoded["attention_mask"][index])[None] if "attention_mask" in encoded else None
        starts, ends, scores, min_null_score = _select_starts_ends(
            start_logits,
            end_logits,
            p_mask,
            attention_mask,
            min_null_score,
            pre_topk,
            handle_impossible_answer,
            max_answer_len,
        )
        window = encoded[index]  # the tokenizers.Encoding: offsets and word ids of this window
        # 4.x measured spans in an input that could have been padded on the left; its inputs never were, so
        # this counts pad tokens that the text itself produced, as 4.x did.
        shift = 0
        if tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None:
            shift = int(np.sum(np.array(encoded["input_ids"][index]) == tokenizer.pad_token_id))
        sequence_index = 1 if question_first else 0
        for s, e, score in zip(starts, ends, scores, strict=True):
            start_char, end_char = _char_span(window, int(s) - shift, int(e) - shift, sequence_index, align_to_words)
            text = context[start_char:end_char]
            same = by_text.get(text.lower())
            if same is not None:  # the first span found keeps its place; the scores add up
                same["score"] += score.item()
            else:
                answer = {"score": score.item(), "start": start_char, "end": end_char, "answer": text}
                answers.append(answer)
                by_text[text.lower()] = answer

    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


def _check_room(tokenizer, question: str, context: str, max_seq_len: int, doc_stride: int) -> None:
    """Refuse, in words, the windows that the Rust tokenizer would refuse with an error or a panic (as under 4.x).

    Windows are needed only when the pair is longer than `max_seq_len`; each then holds the question, the special
    tokens and at least `doc_stride + 1` context tokens.
    """
    question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    special_tokens = tokenizer.num_special_tokens_to_add(pair=True)
    room = max_seq_len - special_tokens - question_tokens
    if doc_stride < room:
        return
    context_tokens = len(tokenizer(context, add_special_tokens=False)["input_ids"])  # only on this rare path
    if question_tokens + context_tokens + special_tokens > max_seq_len:
        raise ValueError(
            f"The question ({question_tokens} tokens) leaves room for {max(room, 0)} context tokens in a window of "
            f"{max_seq_len}, not more than the {doc_stride} that windows overlap by: shorten the question, raise "
            "max_seq_len or lower doc_stride."
        )


def _window_logits(model, tokenizer, encoded):
    """Yield (window index, start logits, end logits) as numpy rows of shape (1, window length), in order.

    Only windows of the same length share a batch, so no padding enters the model and each window's logits are
    those 4.x computed one window at a time.
    """
    import torch

    names = [n for n in tokenizer.model_input_names if n in encoded]
    forward = getattr(model, "forward", model)
    extra = {"use_cache": False} if "use_cache" in inspect.signature(forward).parameters else {}
    device = getattr(model, "device", None) or next(model.parameters()).device
    lengths = [len(ids) for ids in encoded["input_ids"]]
    first = 0
    while first < len(lengths):
        last = first + 1
        while last < len(lengths) and last - first < _WINDOW_BATCH and lengths[last] == lengths[first]:
            last += 1
        batch = {n: torch.tensor(encoded[n][first:last], dtype=torch.long, device=device) for n in names}
        with torch.no_grad():
            output = model(**batch, **extra)
        if isinstance(output, dict):
            start, end = output["start_logits"], output["end_logits"]
        else:
            start, end = output[:2]
        if start.dtype == torch.bfloat16:  # numpy has no bfloat16; 4.x widened only this one
            start, end = start.float(), end.float()
        start, end = start.cpu().numpy(), end.cpu().numpy()
        for row in range(last - first):
            yield first + row, start[row : row + 1], end[row : row + 1]
        first = last


def _p_mask(tokenizer, encoded, index: int, question_first: bool) -> np.ndarray:
    """1 for tokens that cannot be in the answer: 4.x masked the question and specials only when it came first."""
    sequence_ids = encoded.sequence_ids(index)
    if question_first:
        mask = np.array([sid != 1 for sid in sequence_ids], dtype=np.int64)
    else:
        mask = np.zeros(len(sequence_ids), dtype=np.int64)
    if tokenizer.cls_token_id is not None:  # some models point at CLS for "no answer"
        mask[np.array(encoded["input_ids"][index]) == tokenizer.cls_token_id] = 0
    return mask[None]


def _select_starts_ends(
    start: np.ndarray,
    end: np.ndarray,
    p_mask: np.ndarray,
    attention_mask: np.ndarray | None,
    min_null_score: float,
    top_k: int,
    handle_impossible_answer: bool,
    max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """4.x's `select_starts_ends`: softmax over allowed tokens, then the best spans."""
    undesired_tokens = np.abs(p_mask - 1)  # despite the name, 1 marks the tokens an answer may use
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)

    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()

    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0  # the first token is never an answer
    starts, ends, scores = _decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


def _decode_spans(
    start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best `topk` spans, their scores, as 4.x's `decode_spans` chose them."""
    spans = _decode_spans_in_band(start, end, topk, max_answer_len)
    if spans is None:
        return _decode_spans_4x(start, end, topk, max_answer_len, undesired_tokens)
    starts, ends, scores = spans
    # the same filter as 4.x's; it keeps every span with a positive score
    allowed = undesired_tokens.nonzero()
    keep = np.isin(starts, allowed) & np.isin(ends, allowed)
    return starts[keep], ends[keep], scores[keep]


def _decode_spans_in_band(
    start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """4.x's best spans from the n x max_answer_len scores that can be non-zero, not its n x n matrix.

    4.x's choice depends only on the values when the `topk` best scores are positive and all different (and differ
    from the next one); then these are the same spans with the same float32 scores, found 25 times faster in a
    384-token window. Otherwise None: ties and zero scores are ordered by 4.x's own `argpartition`.
    """
    n = start.shape[-1]
    width = min(max_answer_len, n)
    span_ends = np.arange(n)[:, None] + np.arange(width)[None, :]
    band = start[0][:, None] * end[0][np.minimum(span_ends, n - 1)]
    band[span_ends >= n] = 0
    flat = band.ravel()
    if flat.size < topk:
        return None
    wanted = min(topk + 1, flat.size)
    best = np.argpartition(-flat, wanted - 1)[:wanted] if flat.size > wanted else np.arange(flat.size)
    best = best[np.argsort(-flat[best], kind="stable")]
    values = flat[best]
    if not (np.all(values[:topk] > 0) and np.all(values[:-1] > values[1:])):
        return None
    chosen = best[:topk]
    starts = chosen // width
    return starts, starts + chosen % width, flat[chosen]


def _decode_spans_4x(
    start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4.x's `decode_spans`, kept line for line: the tie order of `argpartition` decides equal-score answers."""
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    # spans that end before they start, or are longer than max_answer_len, score 0
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    # nonzero() of a 2-D mask is (rows, columns): its row indices (all 0) let token 0 through, as in 4.x
    allowed = undesired_tokens.nonzero()
    desired_spans = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts = starts[desired_spans]
    ends = ends[desired_spans]
    scores = candidates[0, starts, ends]
    return starts, ends, scores


def _char_span(window, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
    """Character span in the original context for tokens s..e, widened to whole words when asked (4.x)."""
    if align_to_words:
        try:
            start_word = window.token_to_word(s)
            end_word = window.token_to_word(e)
            return (
                window.word_to_chars(start_word, sequence_index=sequence_index)[0],
                window.word_to_chars(end_word, sequence_index=sequence_index)[1],
            )
        except Exception:  # special tokens have no word (None); 4.x fell back to token offsets for any failure
            pass
    return window.offsets[s][0], window.offsets[e][1]
