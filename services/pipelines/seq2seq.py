"""Summarization and translation over `AutoModelForSeq2SeqLM`, as transformers 4.x's pipelines did them.

transformers 5 removed `SummarizationPipeline` and `TranslationPipeline`; `summarize` and `translate` give the same
strings 4.x gave for the same encoder-decoder model, inputs and generation settings (checked against outputs
recorded with 4.57 in ``tests/data/seq2seq/golden.json``). What 4.x did, and these runners do:

- the task's entry in ``model.config.task_specific_params`` ("summarization", "translation_en_to_fr", ...) gives a
  prefix for the text (T5's "summarize: ") and generation settings; a plain "translation" took the first
  ``translation_*`` entry;
- generation settings stack up as in 4.x: the pipeline's own defaults (``max_new_tokens=256, num_beams=4``) over
  the model's `generation_config` (a model's ``num_beams`` never won over the pipeline's 4; its ``max_length``
  other than 20 dropped the 256 new tokens), then the task's settings, then yours;
- so, as in 4.x, a ``max_length`` (yours or the task's) is ignored while ``max_new_tokens=256`` stands: with T5 and
  every model whose generation config sets no ``max_length``. Pass ``max_new_tokens`` to bound such a model;
- tokenizers with ``_build_translation_inputs`` (mBART, M2M100, NLLB) get `src_lang`/`tgt_lang` and force the
  target language as the first generated token; they get no prefix;
- outputs are decoded with special tokens skipped and no clean-up of spaces unless
  ``clean_up_tokenization_spaces=True`` (applied as 4.x did, also for BPE tokenizers where v5 would skip it);
- ``num_return_sequences > 1`` gives a list of dicts for a string and a list of such lists for a list of strings.

Where it differs: lists run in padded batches (`batch_size`, 8 by default; 4.x ran one text at a time), inputs are
truncated by default (4.x's default was not to), a tokenizer without a `model_max_length` truncates at the model's
`max_position_embeddings` (4.x crashed past it), and empty or blank texts are refused with a `ValueError`. The caps
of `services.core.limits` apply: generation settings (new tokens, beams, returned sequences), the time a generation may
run (`max_time`), and without truncation an input of at most `sequence_tokens` tokens.
4.x skipped a second merge of the model's generation defaults for generation configs saved before 4.50; that
only mattered when task settings put a value back to the library default, and here the merge always happens.
"""

from __future__ import annotations

import logging
from typing import Any

from services.core.limits import LimitExceeded, get_limits
from services.pipelines import caps

logger = logging.getLogger(__name__)

# Text2TextGenerationPipeline._default_generation_config in 4.x.
_PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 4}
_BATCH_SIZE = 8
# Tokenizers without a model_max_length report a huge placeholder (1e30); anything above this is "not set".
_NO_MAX_LENGTH = 1_000_000


def is_seq2seq(model) -> bool:
    """Whether `model` is an encoder-decoder (T5, BART, Marian ...) that these runners can drive."""
    return bool(getattr(model.config, "is_encoder_decoder", False))


def summarize(model, tokenizer, texts: str | list[str], *, truncation: bool = True, **generate_kwargs) -> list[dict]:
    """Summaries as 4.x's summarization pipeline returned them: ``[{"summary_text": ...}, ...]``."""
    return _run(model, tokenizer, texts, "summarization", "summary_text", truncation, None, None, generate_kwargs)


def translate(
    model,
    tokenizer,
    texts: str | list[str],
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    truncation: bool = True,
    **generate_kwargs,
) -> list[dict]:
    """Translations as 4.x's translation pipeline returned them: ``[{"translation_text": ...}, ...]``.

    With both languages given this is 4.x's ``pipeline("translation_{src}_to_{tgt}")``, otherwise its
    ``pipeline("translation")``.
    """
    if src_lang and tgt_lang:
        task = f"translation_{src_lang}_to_{tgt_lang}"
    else:
        task = _default_translation_task(model)
        if src_lang is None and tgt_lang is None:
            # 4.x read the languages off a translation_xx_to_yy task name
            parts = task.split("_")
            if len(parts) == 4:
                src_lang, tgt_lang = parts[1], parts[3]
    return _run(model, tokenizer, texts, task, "translation_text", truncation, src_lang, tgt_lang, generate_kwargs)


def _default_translation_task(model) -> str:
    """What 4.x's pipeline("translation") became: the model's first translation_* task, if it has one."""
    params = getattr(model.config, "task_specific_params", None) or {}
    return next((key for key in params if key.startswith("translation")), "translation")


def _run(
    model,
    tokenizer,
    texts: str | list[str],
    task: str,
    key: str,
    truncation: bool,
    src_lang: str | None,
    tgt_lang: str | None,
    kwargs: dict[str, Any],
) -> list:
    import torch

    single = isinstance(texts, str)
    items = _check_texts(texts)
    kwargs = caps.bounded(caps.check_generation(kwargs))
    clean_up = bool(kwargs.pop("clean_up_tokenization_spaces", False))
    batch_size = int(kwargs.pop("batch_size", None) or _BATCH_SIZE)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    if tokenizer.pad_token_id is None:
        batch_size = 1  # nothing to pad with: one text at a time, as 4.x ran them
    values, prefix = _pipeline_generation_config(model, tokenizer, task)
    results = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            inputs = _encode(model, tokenizer, batch, prefix, truncation, src_lang, tgt_lang)
            # Per-call settings as 4.x passed them to generate(): the forced target language, then the caller's.
            call = {k: inputs.pop(k) for k in ("forced_bos_token_id",) if k in inputs} | kwargs
            output_ids = _generate(model, inputs, values, call)
            per_text = output_ids.reshape(len(batch), -1, output_ids.shape[-1])
            for sequences in per_text:
                results.append([{key: _decode(tokenizer, ids, clean_up)} for ids in sequences])
    if single:
        return results[0]
    # 4.x flattened a list's results only when each text had one output
    return [r[0] for r in results] if all(len(r) == 1 for r in results) else results


def _check_texts(texts: Any) -> list[str]:
    items = [texts] if isinstance(texts, str) else texts
    if not isinstance(items, list) or not items:
        raise ValueError("Please give a text, or a non-empty list of texts.")
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ValueError(f"Text {i + 1} is a {type(text).__name__}, not a string.")
        if not text.strip():
            where = "The text" if len(items) == 1 else f"Text {i + 1} of {len(items)}"
            raise ValueError(f"{where} is empty: there is nothing to summarize or translate.")
    return items


def _pipeline_generation_config(model, tokenizer, task: str):
    """The generation settings 4.x's pipeline built for `task`, and the text prefix; user settings come later."""
    from transformers import GenerationConfig

    # The library defaults of 4.x's GenerationConfig(); v5 leaves unset values None and keeps these as BC defaults.
    defaults = GenerationConfig._get_default_generation_params()
    model_values = {
        k: v
        for k, v in model.generation_config.to_dict().items()
        if not k.startswith("_")
        and k != "transformers_version"
        and v is not None
        and v != defaults.get(k)
        and not (k == "cache_implementation" and v == "hybrid")
    }
    values = {**defaults, **_PIPELINE_DEFAULTS}

    def fill_model_defaults() -> None:
        # 4.x took a model value only where the pipeline's config still held the library default.
        for k, v in model_values.items():
            if values.get(k) == defaults.get(k):
                values[k] = v

    fill_model_defaults()
    if values.get("max_new_tokens") == _PIPELINE_DEFAULTS["max_new_tokens"] and values.get("max_length") not in (
        None,
        defaults["max_length"],
    ):
        values["max_new_tokens"] = None  # a model's own max_length beat the pipeline's 256 new tokens
    prefix = getattr(model.config, "prefix", None)
    task_params = dict((getattr(model.config, "task_specific_params", None) or {}).get(task) or {})
    if "prefix" in task_params:
        prefix = task_params.pop("prefix")
    known = GenerationConfig()
    values.update({k: v for k, v in task_params.items() if hasattr(known, k)})  # 4.x's update() dropped the rest
    fill_model_defaults()  # generate() merged the model's defaults once more
    if values.get("pad_token_id") is None and tokenizer.pad_token_id is not None:
        values["pad_token_id"] = tokenizer.pad_token_id
    if values.get("temperature") == 0.0:
        values["do_sample"] = False
    return values, prefix or ""


def _encode(model, tokenizer, batch: list[str], prefix: str, truncation: bool, src_lang, tgt_lang) -> dict:
    """Tokenize like 4.x's preprocess: multilingual tokenizers build their own inputs, others get the prefix."""
    options: dict[str, Any] = {"truncation": truncation, "padding": len(batch) > 1}
    limit = getattr(tokenizer, "model_max_length", None)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if truncation and (limit is None or limit > _NO_MAX_LENGTH) and max_positions:
        options["max_length"] = max_positions
    if getattr(tokenizer, "_build_translation_inputs", None):
        inputs = tokenizer._build_translation_inputs(
            batch, return_tensors="pt", src_lang=src_lang, tgt_lang=tgt_lang, **options
        )
    else:
        inputs = tokenizer([prefix + text for text in batch], return_tensors="pt", **options)
    inputs = dict(inputs)
    inputs.pop("token_type_ids", None)  # tokenizers make them, generate() refuses them
    cap = get_limits().sequence_tokens
    if not truncation and inputs["input_ids"].shape[-1] > cap:
        raise LimitExceeded(
            f"Without truncation this text is {inputs['input_ids'].shape[-1]:,} tokens long; at most {cap:,} are "
            "accepted: let it be truncated, or shorten it."
        )
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in inputs.items()}


def _generate(model, inputs: dict, values: dict, call: dict):
    import copy

    from transformers import GenerationConfig

    if call.get("generation_config") is not None:
        # 4.x used a caller's config instead of the pipeline's; generate() fills its unset values from the model
        call = dict(call)
        config = copy.deepcopy(call.pop("generation_config"))
    else:
        values = dict(values)
        if call.get("max_new_tokens", values.get("max_new_tokens")) is not None:
            # max_new_tokens overrides any max_length; leaving it out spares v5's warning about having both
            values["max_length"] = None
            if call.get("max_length") is not None and call.get("max_new_tokens") is None:
                logger.warning(
                    "max_length=%s is ignored: max_new_tokens=%s takes precedence, as it did in transformers 4.x's "
                    "pipelines. Pass max_new_tokens to limit the output.",
                    call["max_length"],
                    values["max_new_tokens"],
                )
                call = {k: v for k, v in call.items() if k != "max_length"}
        config = GenerationConfig(**values)
    model_kwargs = config.update(**call)  # what is not a generation setting goes to the model, as in 4.x
    return model.generate(**inputs, generation_config=config, **model_kwargs)


def _decode(tokenizer, ids, clean_up: bool) -> str:
    text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    # v5 skips the clean-up for BPE tokenizers; 4.x applied it to every tokenizer.
    return tokenizer.clean_up_tokenization(text) if clean_up else text
