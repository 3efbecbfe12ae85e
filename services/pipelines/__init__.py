"""Run any NLP task on any model, returning what transformers 4.x's pipeline returned for it.

    run("sentiment-analysis", "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "I love it")
    run("question-answering", model, {"question": "...", "context": "..."}, top_k=3)

Where transformers 5 still has the pipeline (classification, NER, fill-mask, zero-shot, feature extraction,
text generation) it is used, built once per cached model. Question answering, summarization and translation
were removed in v5: `qa` and `seq2seq` re-implement the 4.x runners over the Auto model classes, and decoder-only
chat models summarize and translate through their chat template. Sentence-embedding models (like the packaged
MiniLM) also do sentence similarity and an embedding-based zero-shot classification.

Every entry point checks its inputs and settings against the caps of `services.core.limits` (`caps`) before a model
is loaded: text length, how many texts, labels and sentences, tokens to generate, beams, top_k; every generation
is bounded in time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

from services.core import gpu
from services.core.errors import PlaygroundError, TaskMismatch
from services.core.limits import courtesy
from services.models import loading
from services.models.catalog import canonical_task, describe_tasks
from services.pipelines import caps

logger = logging.getLogger(__name__)

_TRANSLATION_TASK = re.compile(r"^translation_([a-z]{2,3})_to_([a-z]{2,3})$")
# Tasks that generate token by token (long); the others are quick and go first (`services.core.limits.courtesy`).
GENERATIVE = frozenset({"text-generation", "summarization", "translation"})
_STILL_IN_V5 = {"text-classification", "token-classification", "fill-mask", "feature-extraction", "text-generation"}
WINDOW_CAP_TOKENS = 16_384  # NER windows cover this much of a long text; beyond it a request would take minutes


def run(
    task: str,
    model: str,
    inputs: Any,
    *,
    owner: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    **params: Any,
) -> Any:
    """Run `task` with `model` on `inputs`; the result has the transformers 4.x pipeline schema for that task."""
    match = _TRANSLATION_TASK.match(task)
    if match:  # 4.x's translation_en_to_fr style names carry the languages
        params.setdefault("src_lang", match.group(1))
        params.setdefault("tgt_lang", match.group(2))
        task = "translation"
    canonical = canonical_task(task)
    caps.check_inputs(canonical, inputs)
    params = caps.check_params(canonical, params)
    loaded = load_for(canonical, model, owner=owner, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if canonical in GENERATIVE:
        return plain(run_loaded(loaded, canonical, inputs, **params))
    with courtesy().quick() as threads:  # a quick run: long generations pause between tokens meanwhile
        if loaded.device == "cpu":
            use_threads(threads)
        return plain(run_loaded(loaded, canonical, inputs, **params))


def use_threads(count: int) -> None:
    """Compute on `count` CPU threads from now on in this thread (OpenMP's setting is per calling thread; MKL's is
    process-wide, so it is never set back and forth while two kinds of work share the cores)."""
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def parse_inputs(text: str) -> Any:
    """Inputs as the CLI and the API take them: a JSON object or list when the text is one, else the text."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def plain(value: Any) -> Any:
    """Numpy scalars (NER scores are float32) as Python numbers, so results are plain JSON everywhere."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and type(value[0]) in (float, int):  # embeddings: long lists already made of Python numbers
            return value
        return [plain(v) for v in value]
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def load_for(task: str, model: str, **options: Any) -> loading.LoadedModel:
    """The model loaded the way `task` needs it (zero-shot: an NLI head, or plain encoder for embeddings)."""
    task = canonical_task(task)
    if task != "zero-shot-classification":
        return loading.load(model, task, **options)
    from services.models.catalog import resolve

    tasks = resolve(model, options.get("owner")).tasks
    if "text-classification" not in tasks and "sentence-similarity" in tasks:
        return loading.load(model, "sentence-similarity", **options)
    try:
        return loading.load(model, "zero-shot-classification", **options)
    except TaskMismatch:
        # Only a model without any task head is an embedding model; a GPT-2 or a translator is not.
        if tasks and "sentence-similarity" not in tasks:
            raise
        from services.pipelines.embeddings import is_embedding_model

        loaded = loading.load(model, "sentence-similarity", **options)
        if not is_embedding_model(loaded):
            raise
        return loaded


def run_loaded(loaded: loading.LoadedModel, task: str, inputs: Any, **params: Any) -> Any:
    """Run a task on an already loaded model (the batch job and the benchmarks call this directly).

    One request at a time per model: a fast tokenizer fails ("Already borrowed") when two threads use it at once.
    """
    params = caps.check_params(task, params)
    with gpu.lane(loaded.device), loaded.busy:  # the GPU lane first, then the model: always in this order
        return _run_locked(loaded, task, inputs, params)


def _run_locked(loaded: loading.LoadedModel, task: str, inputs: Any, params: dict) -> Any:
    from services.pipelines import chat, embeddings

    if task == "question-answering":
        return _question_answering(loaded, inputs, params)
    if task in ("summarization", "translation"):
        return _seq2seq_task(loaded, task, inputs, params)
    if task == "sentence-similarity":
        return embeddings.similarity(loaded, inputs["source_sentence"], inputs["sentences"])
    if task == "zero-shot-classification" and embeddings.is_embedding_model(loaded):
        try:
            return embeddings.zero_shot(loaded, inputs, **params)
        except TypeError as err:  # an unknown keyword
            raise PlaygroundError(f"A setting is not understood by the {task} task: {err}") from err
    if task == "text-generation":
        params = _generation_defaults(loaded, params)
        inputs = _fit_prompt(loaded, inputs, params)
        if getattr(loaded.model, "generates_only", False):  # the fast CPU copy: no transformers pipeline for it
            return chat.generate_only(loaded, inputs, params)
    if task == "fill-mask":
        _check_mask(loaded, inputs)
    inputs, params = _long_input_settings(loaded, task, inputs, params)
    try:
        return pipeline_for(loaded, task)(inputs, **params)
    except TypeError as err:  # an unknown keyword for this pipeline
        raise PlaygroundError(f"A setting is not understood by the {task} task: {err}") from err


def _check_mask(loaded: loading.LoadedModel, inputs: Any) -> None:
    mask = loaded.tokenizer.mask_token
    if mask and any(mask not in text for text in _texts(inputs)):
        example = f"Paris is the {mask} of France."
        raise PlaygroundError(f"Put the mask token {mask} where the model should guess a word, e.g. '{example}'")


def pipeline_for(loaded: loading.LoadedModel, task: str):
    """The transformers pipeline for this cached model and task, built once and kept with the model."""
    from transformers import pipeline

    key = ("pipeline", task)
    with loaded.lock:
        pipe = loaded.extras.get(key)
        if pipe is None:
            if task not in _STILL_IN_V5 | {"zero-shot-classification"}:
                raise TaskMismatch(f"No transformers pipeline for {task}.")
            pipe = pipeline(task, model=loaded.model, tokenizer=loaded.tokenizer, device=loaded.model.device)
            loaded.extras[key] = pipe
    return pipe


def _texts(inputs: Any) -> list[str]:
    return (
        [inputs]
        if isinstance(inputs, str)
        else [t for t in inputs if isinstance(t, str)]
        if isinstance(inputs, list)
        else []
    )


def _long_input_settings(loaded: loading.LoadedModel, task: str, inputs: Any, params: dict) -> tuple[Any, dict]:
    """Read long texts safely: classifiers and feature extraction read the first `limit` tokens; NER reads the
    text in overlapping windows (the pipeline's `stride`), up to WINDOW_CAP_TOKENS so a request stays interactive."""
    params = dict(params)
    if task == "text-classification":
        params.setdefault("truncation", True)
    elif task == "feature-extraction":
        params.setdefault("tokenize_kwargs", {"truncation": True})
    elif task == "fill-mask":
        params.setdefault("tokenizer_kwargs", {"truncation": True})
    elif task == "token-classification" and loaded.tokenizer.is_fast:
        limit = loaded.tokenizer.model_max_length
        if any(len(t) > limit for t in _texts(inputs)) and longest_tokens(loaded, inputs) > limit:
            params.setdefault("stride", limit // 4)
            if params.get("aggregation_strategy") in (None, "none"):
                # the pipeline windows only grouped entities; whole words, as the tab's default
                params["aggregation_strategy"] = "first"
            if isinstance(inputs, str):
                inputs = _first_tokens(loaded, inputs, WINDOW_CAP_TOKENS)
    elif task == "token-classification" and params.get("aggregation_strategy") in ("first", "average", "max"):
        params["aggregation_strategy"] = "simple"  # word-level grouping needs a fast tokenizer's word ids
    return inputs, params


def _first_tokens(loaded: loading.LoadedModel, text: str, count: int) -> str:
    """The prefix of `text` made of its first `count` tokens, cut at a character offset (nothing re-decoded)."""
    encoded = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    return text if len(offsets) <= count else text[: offsets[count - 1][1]]


def longest_tokens(loaded: loading.LoadedModel, inputs: Any) -> int:
    """Token count of the longest text in `inputs` (without special tokens)."""
    texts = _texts(inputs)
    if isinstance(inputs, dict):
        texts = [str(v) for v in inputs.values() if isinstance(v, str)]
    counts = [len(loaded.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return max(counts, default=0)


def input_notice(task: str, model: str, inputs: Any, owner: str | None = None) -> str | None:
    """A sentence for the UI when the text is longer than the model reads at once, saying what happens."""
    task = canonical_task(task)
    if task in ("sentence-similarity", "zero-shot-classification"):
        return _encoder_notice(task, model, inputs, owner)
    if not isinstance(inputs, str | dict):
        return None
    from services.pipelines.chat import PROMPT_CAP_TOKENS

    loaded = load_for(task, model, owner=owner)
    limit = loading.token_limit(loaded.model.config, loaded.tokenizer)
    text = inputs if task != "question-answering" else inputs.get("context", "")
    texts = [text] if isinstance(text, str) else [str(v) for v in text.values() if isinstance(v, str)]
    if all(len(t) <= min(limit, PROMPT_CAP_TOKENS) for t in texts):
        return None  # a token covers at least one character: a short text cannot be too long (no tokenizing)
    with loaded.busy:
        count = longest_tokens(loaded, text)
    if count <= limit:
        return None

    how = {
        "token-classification": "it was read in overlapping windows"
        + (f", up to its first {WINDOW_CAP_TOKENS:,} tokens" if count > WINDOW_CAP_TOKENS else ""),
        "question-answering": "it was read in overlapping windows, so the answer can come from anywhere in it",
        "text-generation": "only the last part fits, so the beginning was left out",
    }.get(task, f"only its first {limit:,} tokens were used")
    decoder_only = not getattr(loaded.model.config, "is_encoder_decoder", False)
    if decoder_only and task in ("summarization", "translation", "text-generation"):
        limit = min(limit, PROMPT_CAP_TOKENS)  # what chat.fit_text keeps
        if count <= limit:
            return None
        kept = "first" if task != "text-generation" else "last"
        how = f"only its {kept} {limit:,} tokens were used"
    return f"Your text is {count:,} tokens long and this model reads {limit:,} at a time: {how}."


def _encoder_notice(task: str, model: str, inputs: Any, owner: str | None) -> str | None:
    """Similarity and zero-shot cut each text at the model's limit: say which texts were cut."""
    from services.pipelines.embeddings import cut_notice

    if not isinstance(inputs, str | dict):
        return None
    return cut_notice(load_for(task, model, owner=owner), task, inputs)


def zero_shot_by_embedding(model: str, owner: str | None = None) -> bool:
    """Whether zero-shot with this model compares embeddings (the scores are similarities, not NLI entailment)."""
    from services.pipelines import embeddings

    return embeddings.is_embedding_model(load_for("zero-shot-classification", model, owner=owner))


def _fit_prompt(loaded: loading.LoadedModel, inputs: Any, params: dict) -> Any:
    """Keep the end of a too-long prompt (a continuation depends on what comes last), or of a conversation its
    newest messages; a list of prompts is fitted prompt by prompt."""
    from services.pipelines.chat import fit_messages, fit_text

    reserve = int(params.get("max_new_tokens") or 64) + 2
    if isinstance(inputs, str):
        return fit_text(loaded, inputs, reserve, keep_end=True)
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        return fit_messages(loaded, inputs, reserve)
    if isinstance(inputs, list):
        return [fit_text(loaded, t, reserve, keep_end=True) if isinstance(t, str) else t for t in inputs]
    return inputs


def _question_answering(loaded: loading.LoadedModel, inputs: Any, params: dict) -> Any:
    from services.pipelines import qa

    if isinstance(inputs, list):
        return qa.answer_question(
            loaded.model,
            loaded.tokenizer,
            [i["question"] for i in inputs],
            [i["context"] for i in inputs],
            **params,
        )
    return qa.answer_question(loaded.model, loaded.tokenizer, inputs["question"], inputs["context"], **params)


def _seq2seq_task(loaded: loading.LoadedModel, task: str, inputs: Any, params: dict) -> list[dict]:
    from services.pipelines import chat

    if getattr(loaded.model.config, "is_encoder_decoder", False):
        from services.pipelines import seq2seq

        if task == "summarization":
            return seq2seq.summarize(loaded.model, loaded.tokenizer, inputs, **params)
        return seq2seq.translate(loaded.model, loaded.tokenizer, inputs, **params)
    if not chat.can_chat(loaded):
        raise TaskMismatch(
            f"'{loaded.id}' is neither a sequence-to-sequence model (like T5 or BART) nor a chat model, so it "
            f"cannot do {task} here. It can do: {describe_tasks(_tasks_of(loaded))}."
        )
    texts = inputs if isinstance(inputs, list) else [inputs]
    key = "summary_text" if task == "summarization" else "translation_text"
    if task == "summarization":
        return [{key: chat.summarize(loaded, text, **params)} for text in texts]
    return [{key: chat.translate(loaded, text, **params)} for text in texts]


def _tasks_of(loaded: loading.LoadedModel) -> tuple[str, ...]:
    from services.models.catalog import tasks_for_config

    return tasks_for_config(loaded.model.config.to_dict())


def _generation_defaults(loaded: loading.LoadedModel, params: dict) -> dict:
    """4.x's text-generation pipeline kept `max_length` small; people expect a paragraph. Greedy unless asked."""
    params = caps.bounded(caps.check_generation(params))
    if "max_new_tokens" not in params and "max_length" not in params:
        params["max_new_tokens"] = 64
    if params.get("do_sample") is None and "temperature" not in params:
        params["do_sample"] = False
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        params.setdefault("pad_token_id", tokenizer.eos_token_id)
    return params


def stream(
    model: str,
    prompt: str | list[dict],
    *,
    owner: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    halt: threading.Event | None = None,
    **params: Any,
) -> Iterator[dict]:
    """Text generation, streamed: yields {"text": so far}, and last {"text", "tokens"} with token probabilities.
    Setting `halt` ends it early, gracefully: the last item has "stopped": True and the tokens so far."""
    from services.pipelines import chat

    caps.check_inputs("text-generation", prompt)
    params = caps.check_generation(params)
    loaded = loading.load(
        model, "text-generation", owner=owner, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    yield from chat.stream(loaded, prompt, halt=halt, **params)


def uses_chat_template(model: str, owner: str | None = None) -> bool:
    """Whether `stream` treats a plain prompt as a chat message for this model (it has a chat template)."""
    from services.pipelines import chat

    return chat.has_chat_template(loading.load(model, "text-generation", owner=owner))


def similarity_matrix(model: str, sentences: list[str], owner: str | None = None) -> list[list[float]]:
    """Cosine similarity of every pair of sentences (for the similarity heat map)."""
    from services.pipelines import embeddings

    caps.check_inputs(
        "sentence-similarity", {"source_sentence": sentences[0] if sentences else "", "sentences": sentences}
    )
    caps.check_count(sentences, "sentences")
    return embeddings.similarity_matrix(loading.load(model, "sentence-similarity", owner=owner), sentences)
