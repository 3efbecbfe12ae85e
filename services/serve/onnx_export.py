"""Export an encoder model folder to ONNX, with a dynamic int8 copy, and run the export with ONNX Runtime.

Why: on a CPU an encoder (BERT, MiniLM, DistilBERT) answers several times faster as int8 ONNX than as float32
PyTorch, and the folder runs wherever onnxruntime does, without torch. `export()` writes ``model.onnx`` (float32),
``model.int8.onnx`` (weights quantized to int8 by `onnxruntime.quantization.quantize_dynamic`), the tokenizer,
``config.json`` (the label names) and ``onnx_report.json``: parity with the PyTorch model and speed and size of
each (see `services.serve.onnx_report`); `services.serve.onnx_model.OnnxModel` and the model cache load such a folder.

The graph comes from transformers 5's own exporter (`transformers.exporters.OnnxExporter`, which runs
`torch.export` and `torch.onnx.export` with its patches for transformers models); optimum does not support
transformers 5. Batch and sequence axes stay dynamic.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.core.errors import NotAModel, PlaygroundError, TaskMismatch
from services.models.onnx_runtime import FP32, INT8, REPORT
from services.serve import onnx_report

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
# Task -> (Auto class, the head's architecture suffix in config.json, the outputs the app reads).
TASKS = {
    "text-classification": ("AutoModelForSequenceClassification", "ForSequenceClassification", ("logits",)),
    "token-classification": ("AutoModelForTokenClassification", "ForTokenClassification", ("logits",)),
    "question-answering": ("AutoModelForQuestionAnswering", "ForQuestionAnswering", ("start_logits", "end_logits")),
    "feature-extraction": ("AutoModel", None, ("last_hidden_state",)),
    "sentence-similarity": ("AutoModel", None, ("last_hidden_state",)),
}
_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}


def export_task(tasks: tuple[str, ...] | list[str]) -> str:
    """The task a model with these tasks is exported for: its head's, else its sentence embeddings."""
    if "text-generation" not in tasks:
        for task in TASKS:
            if task in tasks:
                return task
    raise TaskMismatch("ONNX export is for encoder models: classifiers, NER, question answering and embeddings "
                       "(like minilm-sentiment or all-minilm-l6-v2). For fast CPU generation with the packaged "
                       "SmolLM2, use smollm2-135m-instruct-fast-cpu: its 4-bit weights in ONNX Runtime.")  # fmt: skip


_GENERATIVE = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForSeq2SeqLM")


def export(
    model_dir: Path,
    output_dir: Path,
    task: str,
    quantize: bool = True,
    progress: Progress | None = None,
    *,
    samples: Sequence | None = None,
    labels: Sequence | None = None,
    speed_runs: int = 30,
    threads: int | None = None,
    source: str | None = None,
) -> dict:
    """Export the model in `model_dir` for `task` into `output_dir` (new, empty, or an earlier export, which is
    replaced), with an int8 copy when `quantize`, and return the report (also saved as ``onnx_report.json``).

    `samples` (texts; (question, context) pairs for question answering) judge parity, with accuracy when
    `labels` (ids or names) are given; `speed_runs` batch-1 calls per engine time it (0: no speed report), on
    `threads` threads for every engine. `progress(fraction, message)` hears of each stage. `source`: the model's id
    as the user gave it, for the report (the folder's name by default; never a server path)."""
    progress = progress or (lambda fraction, message: None)
    task = _check_task(task)
    model_dir, out = Path(model_dir).expanduser().resolve(), Path(output_dir).expanduser().resolve()
    config = _check_model(model_dir, task)
    if out == model_dir or (out.exists() and any(out.iterdir()) and not (out / REPORT).exists()):
        raise PlaygroundError(f"The folder '{out.name}' already holds files: give the export a new, empty folder.")
    if labels is not None and (samples is None or len(labels) != len(samples)):
        raise PlaygroundError("Give one label per sample text, or no labels at all.")
    if labels is not None:
        onnx_report.label_ids(labels, config.get("label2id") or {})  # an unknown label is refused before the work
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        report = _export(model_dir, tmp, task, config, quantize, progress, samples, labels, speed_runs, threads,
                         source or model_dir.name)  # fmt: skip
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)  # empty or an earlier export, checked above
    tmp.rename(out)
    progress(1.0, "Exported and checked")
    return report


def _export(model_dir, tmp, task, config, quantize, progress, samples, labels, speed_runs, threads, source) -> dict:
    import torch
    import transformers
    from transformers import AutoTokenizer

    progress(0.05, f"Loading {model_dir.name} in float32")
    auto_class, _, output_names = TASKS[task]
    model = getattr(transformers, auto_class).from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    max_length = _max_length(config, tokenizer)
    progress(0.15, "Exporting the float32 graph to ONNX")
    sample = {k: torch.from_numpy(v) for k, v in onnx_report.encode(tokenizer, _PROBES, task, max_length).items()}
    exporter = _export_graph(model, sample, output_names, tmp / FP32)
    quantization = None
    if quantize:
        progress(0.45, "Quantizing the weights to int8")
        quantization = quantize_int8(tmp / FP32, tmp / INT8, model.config.hidden_size)
    tokenizer.save_pretrained(tmp)
    model.config.save_pretrained(tmp)
    pooling = None
    if task in ("feature-extraction", "sentence-similarity"):
        pooling = onnx_report.pooling_mode(model_dir)
        _copy_sentence_settings(model_dir, tmp)

    progress(0.55, "Comparing the ONNX outputs with PyTorch, then timing them in turns")
    threads = threads or onnx_report.default_threads()
    sessions = {"onnx_fp32": onnx_report.session(tmp / FP32, threads)}
    if quantize:
        sessions["onnx_int8"] = onnx_report.session(tmp / INT8, threads)
    texts = list(samples) if samples else list(onnx_report.DEFAULT_SAMPLES)
    encoding = (tokenizer, task, max_length, pooling)
    parity, speed = onnx_report.measure(model, output_names, sessions, encoding, texts, labels, speed_runs, threads)
    report = {
        "task": task,
        "source": source,
        "model_type": model.config.model_type,
        "exporter": exporter,
        "inputs": [i.name for i in sessions["onnx_fp32"].get_inputs()],
        "outputs": [o.name for o in sessions["onnx_fp32"].get_outputs()],
        "max_length": max_length,
        "pooling": pooling,
        "files": {"onnx_fp32": FP32, "onnx_int8": INT8 if quantize else None},
        "quantization": quantization,
        "size_mb": {
            "pytorch_fp32": onnx_report.size_mb(*model_dir.glob("*.safetensors")),
            "onnx_fp32": onnx_report.size_mb(tmp / FP32),
            "onnx_int8": onnx_report.size_mb(tmp / INT8) if quantize else None,
        },
        "parity": parity,
        "speed": speed,
        "versions": onnx_report.versions(),
    }
    (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    logger.info("Exported %s to ONNX: %s", model_dir, {k: report[k] for k in ("task", "exporter", "size_mb")})
    return report


def _copy_sentence_settings(model_dir: Path, tmp: Path) -> None:
    """The sentence-transformers settings (modules.json, pooling, normalisation): the export is then a sentence
    model to the catalog, the pipelines and a server bundle, which pool its vectors as the original's say."""
    for path in model_dir.glob("*.json"):
        if path.name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
            shutil.copyfile(path, tmp / path.name)
    for sub in model_dir.glob("[0-9]_*"):  # 1_Pooling, 2_Normalize: only their JSON settings, never weights
        for path in sub.glob("*.json") if sub.is_dir() else ():
            (tmp / sub.name).mkdir(exist_ok=True)
            shutil.copyfile(path, tmp / sub.name / path.name)


_PROBES = ("The movie was very good and I love it.", "Bad food.")  # two lengths, so no axis is traced as fixed


def _check_task(task: str) -> str:
    task = _ALIASES.get(task, task)
    if task not in TASKS:
        raise TaskMismatch(f"ONNX export does {', '.join(TASKS)}; '{task}' is not one of them.")
    return task


def _check_model(model_dir: Path, task: str) -> dict:
    """The model's config.json, once it is known to be an encoder with the head `task` needs."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if not (model_dir / "config.json").is_file():
        raise NotAModel(f"The folder '{model_dir.name}' holds no model (there is no config.json in it).")
    if not any(model_dir.glob("*.safetensors")):
        raise NotAModel(f"The folder '{model_dir.name}' has no weights in safetensors format (*.safetensors).")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    generative = any(arch.endswith(_GENERATIVE) for arch in architectures)
    # Encoders are the models with a masked-LM head (BERT, DistilBERT, RoBERTa...); decoders and seq2seq models
    # generate token by token, which this one-pass export does not cover.
    if (
        generative
        or config.get("is_encoder_decoder")
        or config.get("is_decoder")
        or config.get("model_type") not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        kind = config.get("model_type") or "unknown"
        raise TaskMismatch(
            f"ONNX export works for encoder models such as BERT, MiniLM or DistilBERT; '{model_dir.name}' is a "
            f"{kind} model that writes text token by token, which this export does not cover."
        )
    suffix = TASKS[task][1]
    if suffix and not any(arch.endswith(suffix) for arch in architectures):
        raise TaskMismatch(
            f"'{model_dir.name}' has no {task} head, so its export would answer with untrained weights: fine-tune "
            "it for the task first, or export it for feature-extraction (sentence embeddings)."
        )
    return config


def _export_graph(model: Any, sample: dict, output_names: tuple[str, ...], path: Path) -> str:
    """Write the float32 graph to `path` and name the exporter that made it."""
    import onnx_ir
    import torch
    from transformers.exporters import OnnxConfig, OnnxExporter

    # Dim.DYNAMIC (not AUTO) fails the export if tracing would fix an axis, instead of saving a fixed-shape graph.
    axes = {name: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for name in sample}
    try:
        program = OnnxExporter().export(model, sample, OnnxConfig(dynamic=True, dynamic_shapes=axes)).program
        exporter = "transformers.exporters.OnnxExporter"
    except Exception as err:  # any exporter failure gets the fallback below
        # The exporter is marked experimental and patches torch internals: when it fails on a model, plain
        # torch.onnx.export (the dynamo exporter; the legacy TorchScript one is deprecated in torch 2.9+) often
        # still works for an encoder, given a wrapper that returns a tuple.
        logger.warning("transformers' ONNX exporter failed (%s); trying torch.onnx.export", err)
        program = _torch_onnx_export(model, sample, output_names, axes)
        exporter = "torch.onnx.export(dynamo=True)"
    # One file: encoders are far below protobuf's 2 GB limit, and one file is easier to move and open.
    external = sum(v.const_value.nbytes for v in program.graph.initializers.values() if v.const_value) > 1.8e9
    onnx_ir.save(program, str(path), external_data=f"{path.name}.data" if external else None)
    return exporter


def _torch_onnx_export(model: Any, sample: dict, output_names: tuple[str, ...], axes: dict) -> Any:
    import torch

    names = list(sample)

    class Heads(torch.nn.Module):
        """The model with positional inputs and a tuple of outputs, which torch.onnx.export takes as they are."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            result = self.model(**dict(zip(names, inputs, strict=True)))
            return tuple(result[name] for name in output_names)

    try:
        program = torch.onnx.export(
            Heads().eval(), args=tuple(sample.values()), dynamo=True, dynamic_shapes=(tuple(axes[n] for n in names),),
            input_names=names, output_names=list(output_names), optimize=True,
        )  # fmt: skip
    except Exception as err:
        raise PlaygroundError(
            f"This {model.config.model_type} model could not be exported to ONNX ({type(err).__name__}); "
            "the PyTorch model itself is unchanged and still works in the app."
        ) from err
    return program.model


def quantize_int8(source: Path, target: Path, hidden_size: int) -> dict:
    """Dynamic int8 quantization (int8 weights, activations quantized at run time: no calibration data), and the
    settings used.

    Measured on the packaged MiniLM sentiment model (240 held-back reviews, bench/onnx_minilm.py): every MatMul in
    int8 flips 4 of 240 labels, with one scale per tensor (max |Δlogit| 2.0) or per output channel (1.4). Most of
    the error comes from the feed-forward output projections of the first layers, whose inputs (GELU outputs) have
    outliers that one activation scale per call resolves badly: keeping the first half of them in float32 flips
    none (max |Δlogit| 0.6; 4 flips without per-channel) for about 0.5 ms more at batch 1. The embedding tables
    stay float32: int8 Gathers only shrink the file (62 -> 28 MB) and flipped 2 labels. Not used either: ONNX
    Runtime's quant_pre_process (its symbolic shape inference fails on these graphs) and transformers'
    `ort_fusions="cpu"` (float32 ~15 % faster, int8 within noise, and a graph only ONNX Runtime runs)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load(str(source))
    weights = {init.name: tuple(init.dims) for init in proto.graph.initializer}
    # The MatMuls (in graph order, so layer order) whose constant weight maps the wide FFN width back to hidden_size.
    down = [
        node.name
        for node in proto.graph.node
        if node.op_type == "MatMul"
        and len(weights.get(node.input[1], ())) == 2
        and weights[node.input[1]][1] == hidden_size
        and weights[node.input[1]][0] > hidden_size
    ]
    keep_float = down[: len(down) // 2]
    # quantize_dynamic re-infers shapes and trips over stale value_info of initializers (as transformers' own
    # OnnxRuntimeQuantizer notes): drop those entries.
    kept = [info for info in proto.graph.value_info if info.name not in weights]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(kept)
    cleaned = target.with_name("quantize-input.onnx")
    onnx.save(proto, str(cleaned))
    settings = {"op_types_to_quantize": ["MatMul"], "per_channel": True, "reduce_range": False}
    try:
        with _quiet_root_warnings():
            quantize_dynamic(
                str(cleaned), str(target), weight_type=QuantType.QInt8, nodes_to_exclude=keep_float, **settings
            )
    finally:
        cleaned.unlink(missing_ok=True)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        **settings,
        "kept_float32": keep_float,
        "matmuls_quantized": sum(n.op_type == "MatMul" and n.input[1] in weights for n in proto.graph.node)
        - len(keep_float),
    }


@contextmanager
def _quiet_root_warnings():
    """quantize_dynamic logs "Please consider to run pre-processing" on the root logger at every call."""
    muted = logging.Filter()
    muted.filter = lambda record: "pre-processing" not in record.getMessage()
    logging.getLogger().addFilter(muted)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(muted)


def _max_length(config: dict, tokenizer: Any) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    positions = config.get("max_position_embeddings") or 512
    return min(positions, limit) if isinstance(limit, int) and limit > 0 else positions
