"""`smollm2-135m-instruct-fast-cpu`: the packaged SmolLM2 as a catalog model of its own, decoded by ONNX Runtime
from its own 4-bit weights (`services.models.cpu_onnx`): about 2.5x the tokens per second of the float32 model on a
CPU, with the same greedy answers. Pipelines, RAG chat and the REST API pick it like any chat model.

Why a model of its own rather than a switch: the copy is built once from the packaged model (seconds) and kept
beside it, the model cache counts its bytes like any model's, and a visitor sees which of the two answered. The
app generates through ``model.generate(...)`` (`services.pipelines.chat`): `module_for` gives a torch module whose
`generate` runs the copy token by token and speaks that protocol (a streamer, stopping criteria, the raw logits
of each step, sampling with temperature / top-k / top-p / repetition penalty through transformers' own logits
processors). What the copy cannot do is refused in a sentence that names the float32 model: beam search, batches,
and extra logits processors (RAG chat's "Lean on the sources" runs a second prompt through the model).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from services.core.config import get_settings
from services.core.errors import ModelUnavailable, PlaygroundError
from services.models import packs
from services.models.entries import ModelEntry, ResolvedModel

logger = logging.getLogger(__name__)

FAST_ID = "smollm2-135m-instruct-fast-cpu"
BASE = "smollm2-135m-instruct"
SOURCE = "fast-cpu"
TASKS = ("text-generation",)
DESCRIPTION = (
    "SmolLM2-135M-Instruct for CPU serving: its own 4-bit weights (exact, from the GGUF) run by ONNX Runtime, about "
    "2.5x the tokens/s of the float32 model with the same greedy answers. No beam search."
)
_build_lock = threading.Lock()


def _available() -> str:
    """'' when the fast copy can be made here, else why not (in words)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed"
    pack = packs.PACKS[BASE]
    return "" if pack.installed else f"the package {pack.pip_name} is not installed"


def entry() -> ModelEntry:
    reason = _available()
    return ModelEntry(FAST_ID, TASKS, "packaged", not reason, DESCRIPTION, reason)


def resolve() -> ResolvedModel:
    reason = _available()
    if reason:
        raise ModelUnavailable(f"The fast CPU copy of {BASE} cannot be made here: {reason}.")
    return ResolvedModel(FAST_ID, SOURCE, str(folder()), TASKS)


def check_trainable(resolved: ResolvedModel, model_id: str) -> None:
    if resolved.source == SOURCE:
        raise PlaygroundError(f"'{model_id}' is a copy for serving: it runs, but it cannot be trained. Fine-tune "
                              f"{BASE} instead.")  # fmt: skip


def folder() -> Path:
    """Where the copy lives: built from the packaged model, shared by every visitor (nobody's own data)."""
    return get_settings().home / "cpu-onnx" / BASE


def prepare() -> None:
    """Build the copy now when it can be made and is missing (the app calls it once at start, so that the first
    visitor who picks the model does not wait ~10 s for it); failures are logged, never raised."""
    if _available():
        return
    try:
        _build(lambda fraction, message: None)
    except Exception:
        logger.exception("The fast CPU copy of %s could not be built", BASE)


def _build(progress) -> Path:
    from services.models import cpu_onnx

    target = folder()
    with _build_lock:
        if not (target / cpu_onnx.META_FILE).is_file():
            source = packs.ensure_ready(BASE, progress)
            progress(0.3, f"Building the ONNX Runtime copy of {BASE} from its 4-bit weights (once, ~10-20 s)")
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            cpu_onnx.build(source, partial)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)  # whole, or not there: a crash mid-build leaves only the .partial folder
    return target


def load(progress) -> tuple[Any, Any]:
    """The stand-in module and the tokenizer; the copy is built first when this machine has none."""
    from transformers import AutoConfig, AutoTokenizer

    from services.models import cpu_onnx

    target = _build(progress)
    progress(0.8, f"Starting ONNX Runtime for {FAST_ID}")
    threads = max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
    # Spinning threads: a decode step is ~790 small nodes, and waking idle threads cost more than the work; they
    # stop spinning at the end of each step, so nothing busy-waits between tokens or requests.
    copy = cpu_onnx.load(target, threads=threads, spinning=True, load_tokenizer=False,
                         session_config={"session.force_spinning_stop": "1"})  # fmt: skip
    config = AutoConfig.from_pretrained(target, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    return module_for(copy, config), tokenizer


def size_bytes() -> int:
    from services.models import cpu_onnx

    path = folder() / cpu_onnx.MODEL_FILE
    return path.stat().st_size if path.exists() else 0


def _refuse(what: str) -> PlaygroundError:
    return PlaygroundError(f"The fast CPU copy ({FAST_ID}) does not do {what}: pick {BASE} for it.")


def module_for(copy: Any, config: Any) -> Any:
    """A torch module whose `generate` decodes with the ORT copy, as transformers' `generate` is called here."""
    import torch
    from transformers import GenerationConfig

    class FastCpuLlama(torch.nn.Module):
        generates_only = True  # no forward pass: `services.pipelines` runs text-generation without a pipeline

        def __init__(self) -> None:
            super().__init__()
            self.config, self.copy = config, copy
            self.device, self.dtype = torch.device("cpu"), torch.float32
            try:
                self.generation_config = GenerationConfig.from_pretrained(copy.folder)
            except OSError:
                self.generation_config = GenerationConfig.from_model_config(config)

        def can_generate(self) -> bool:
            return True

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            raise _refuse("single forward passes (it only generates)")

        def generate(self, input_ids=None, attention_mask=None, streamer=None, stopping_criteria=None,
                     logits_processor=None, return_dict_in_generate=False, output_logits=False, max_new_tokens=128,
                     do_sample=False, temperature=None, top_p=None, top_k=None, repetition_penalty=None, num_beams=1,
                     eos_token_id=None, **_unused: Any) -> Any:  # fmt: skip
            return _generate(self.copy, input_ids, streamer, stopping_criteria, logits_processor,
                             return_dict_in_generate, output_logits, max_new_tokens, do_sample, temperature, top_p,
                             top_k, repetition_penalty, num_beams, eos_token_id)  # fmt: skip

    return FastCpuLlama().eval()


def _warpers(do_sample, temperature, top_p, top_k, repetition_penalty) -> Any:
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    chain = LogitsProcessorList()
    if repetition_penalty and float(repetition_penalty) != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(float(repetition_penalty)))
    if do_sample:
        if temperature and float(temperature) != 1.0:
            chain.append(TemperatureLogitsWarper(float(temperature)))
        if top_k:
            chain.append(TopKLogitsWarper(int(top_k)))
        if top_p is not None and float(top_p) < 1.0:
            chain.append(TopPLogitsWarper(float(top_p)))
    return chain


def _generate(copy, input_ids, streamer, stopping_criteria, logits_processor, return_dict, output_logits,
              max_new_tokens, do_sample, temperature, top_p, top_k, repetition_penalty, num_beams, eos):  # fmt: skip
    import torch

    if input_ids is None or input_ids.shape[0] != 1:
        raise _refuse("batches of prompts")
    if (num_beams or 1) > 1:
        raise _refuse("beam search")
    if logits_processor:
        raise _refuse("extra decoding rules such as 'Lean on the sources'")
    chain = _warpers(do_sample, temperature, top_p, top_k, repetition_penalty)
    prompt = input_ids[0].tolist()
    generated: list[int] = []
    logits: list = []

    def choose(raw) -> int:
        scores = torch.from_numpy(raw.copy()).unsqueeze(0)
        if output_logits:
            logits.append(scores)
        if chain:
            scores = chain(torch.tensor([prompt + generated]), scores)
        if do_sample:
            return int(torch.multinomial(torch.softmax(scores.float(), dim=-1), 1)[0, 0])
        return int(scores.argmax())

    if streamer is not None:
        streamer.put(input_ids.cpu())  # a streamer skips the prompt: the first thing it is given
    eos_ids = None if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    steps = copy.stream(prompt, int(max_new_tokens), eos_token_ids=eos_ids, choose=choose)
    try:
        for token in steps:
            generated.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if stopping_criteria and _stop(stopping_criteria, torch.tensor([prompt + generated])):
                break
    finally:
        steps.close()  # the copy's lock is released even when the caller stopped early
        if streamer is not None:
            streamer.end()
    sequences = torch.tensor([prompt + generated])
    if not return_dict:
        return sequences
    from types import SimpleNamespace

    return SimpleNamespace(sequences=sequences, logits=tuple(logits) if output_logits else None)


def _stop(criteria, sequences) -> bool:
    for criterion in criteria:
        said = criterion(sequences, None)
        if bool(said.all()) if hasattr(said, "all") else bool(said):
            return True
    return False
