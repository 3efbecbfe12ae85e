"""An ONNX export made here (`services.serve.onnx_export`) loaded as a model the rest of the app runs.

Why a stand-in module rather than a second set of runners: the pipelines (classification, NER with its word
grouping and windows, our question-answering runner, sentence embeddings) call a model as ``model(**batch)`` and
read ``.logits`` / ``.start_logits`` / ``.last_hidden_state``. `module_for` builds a `torch.nn.Module` whose forward
runs the ONNX Runtime session and returns the same transformers output object, so every task gives the schema it
gives with PyTorch, and the REST API and the batch jobs get the export for free. Its class is named after the
architecture it stands in for, because transformers' pipelines check the model's class name against the task.

An export folder holds ``model.onnx`` (float32), usually ``model.int8.onnx``, the tokenizer, ``config.json`` and
``onnx_report.json`` (its task); the int8 graph is run when there is one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from services.core.errors import NotAModel, TaskMismatch

FP32, INT8, REPORT = "model.onnx", "model.int8.onnx", "onnx_report.json"
EMBEDDING_TASKS = ("feature-extraction", "sentence-similarity")
# The tasks an export answers, by the task it was exported for (an embedding export also does the embedding-based
# zero-shot classification of `services.pipelines.embeddings`).
SERVES = {
    "text-classification": ("text-classification", "zero-shot-classification"),
    "token-classification": ("token-classification",),
    "question-answering": ("question-answering",),
    "feature-extraction": (*EMBEDDING_TASKS, "zero-shot-classification"),
    "sentence-similarity": (*EMBEDDING_TASKS, "zero-shot-classification"),
}
# The transformers output class per exported task, with the graph outputs it carries.
_OUTPUT_CLASS = {
    "text-classification": "SequenceClassifierOutput",
    "token-classification": "TokenClassifierOutput",
    "question-answering": "QuestionAnsweringModelOutput",
    "feature-extraction": "BaseModelOutput",
    "sentence-similarity": "BaseModelOutput",
}


def is_export(folder: Path) -> bool:
    """True for a folder an ONNX export wrote (its report and at least one graph)."""
    folder = Path(folder)
    return (folder / REPORT).is_file() and ((folder / FP32).is_file() or (folder / INT8).is_file())


def report(folder: Path) -> dict:
    try:
        data = json.loads((Path(folder) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NotAModel(f"The folder '{Path(folder).name}' is not an ONNX export made here.") from err
    if not isinstance(data, dict) or data.get("task") not in SERVES:
        raise NotAModel(f"The folder '{Path(folder).name}' is not an ONNX export made here.")
    return data


def check_task(folder: Path, task: str, model_id: str) -> dict:
    """The export's report, once it is known to answer `task` (else a sentence naming what it does)."""
    data = report(folder)
    if task not in SERVES[data["task"]]:
        raise TaskMismatch(
            f"'{model_id}' is an ONNX export for {data['task']}; it cannot do {task}. Export the PyTorch model "
            "again for that task, or use the PyTorch model itself."
        )
    return data


def check_trainable(location: str, model_id: str) -> None:
    """An export runs, but has no PyTorch weights to train: a sentence saying which model to fine-tune instead."""
    folder = Path(location)
    if folder.is_dir() and is_export(folder):
        source = Path(str(report(folder).get("source") or "the model it was made from")).name
        raise NotAModel(f"'{model_id}' is an ONNX export: it runs, but it cannot be trained. Fine-tune {source} "
                        "instead, then export the result again.")  # fmt: skip


def graph_path(folder: Path) -> tuple[Path, str]:
    """The graph to run and its precision: int8 when the export has it."""
    folder = Path(folder)
    return (folder / INT8, "int8") if (folder / INT8).is_file() else (folder / FP32, "float32")


def default_threads() -> int:
    """ONNX Runtime's intra-op threads: the CPUs this process may use, at most 4 (past that a small encoder gains
    little per call, and the app's other models and the web server need cores too)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime session on the CPU with `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle worker threads otherwise spin for a while after each call: on a CPU shared with PyTorch models and the web
    # server that time is taken from them (PyTorch at batch 1 ran ~15x slower interleaved with spinning sessions).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runner(onnx_session: Any):
    """`run(batch) -> {output name: array}` over a session: it feeds the inputs the graph has (DistilBERT takes no
    token_type_ids)."""
    wanted = [i.name for i in onnx_session.get_inputs()]
    names = [o.name for o in onnx_session.get_outputs()]

    def run(batch: dict) -> dict:
        return dict(zip(names, onnx_session.run(None, {k: batch[k] for k in wanted if k in batch}), strict=True))

    return run


def module_for(folder: Path, config: Any, task: str, threads: int | None = None) -> Any:
    """A torch module that runs the export's graph: ``module(input_ids=..., attention_mask=...)`` returns the
    transformers output object of the exported task, as torch tensors on the CPU."""
    import torch
    import transformers.modeling_outputs as outputs

    path, precision = graph_path(folder)
    run = runner(session(path, threads or default_threads()))
    output_class = getattr(outputs, _OUTPUT_CLASS[task])
    fields = set(output_class.__dataclass_fields__)  # an encoder's graph also gives pooler_output: not read here
    architecture = (getattr(config, "architectures", None) or ["OnnxModel"])[0]

    class _OnnxModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.device, self.dtype = torch.device("cpu"), torch.float32  # what it takes in and gives back
            self.onnx_precision, self.onnx_path = precision, path

        def can_generate(self) -> bool:
            return False

        def forward(self, **inputs: Any) -> Any:
            batch = {k: v.detach().cpu().numpy().astype("int64") for k, v in inputs.items() if torch.is_tensor(v)}
            return output_class(**{k: torch.from_numpy(v) for k, v in run(batch).items() if k in fields})

    _OnnxModule.__name__ = _OnnxModule.__qualname__ = architecture  # the pipelines' model-type check reads it
    return _OnnxModule().eval()


def load(folder: Path, task: str, model_id: str, common: dict, progress) -> tuple[Any, Any]:
    """The export's stand-in module and its tokenizer, once it is known to answer `task`. `common`: the
    from_pretrained options of `services.models.loading` (offline, no token on a Space)."""
    from transformers import AutoConfig, AutoTokenizer

    exported = check_task(folder, task, model_id)
    try:
        progress(0.1, f"Loading the tokenizer of {model_id}")
        config = AutoConfig.from_pretrained(folder, **common)
        tokenizer = AutoTokenizer.from_pretrained(folder, **common)
        progress(0.4, f"Starting ONNX Runtime on the {graph_path(folder)[1]} graph of {model_id}")
        model = module_for(folder, config, exported["task"])
    except Exception as err:
        raise NotAModel(f"The ONNX export '{model_id}' could not be read ({type(err).__name__}): export the model "
                        "again.") from err  # fmt: skip
    progress(1.0, f"{model_id} is loaded")
    return model, tokenizer


def size_bytes(folder: Path) -> int:
    """What the loaded export costs, for the model cache's budget: about its graph file's size."""
    path, _ = graph_path(folder)
    return path.stat().st_size if path.exists() else 0
