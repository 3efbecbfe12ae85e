"""Export as a server: a folder that serves ONE model of the playground with OpenAI's API, without the playground,
so that a model tried here runs anywhere (`docker run`, a Hugging Face Docker Space, a plain `uvicorn server:app`)
for people who never install the playground. `build(model_id, output_dir)` writes

    server.py, bundle_engine.py, bundle_wire.py   FastAPI + uvicorn: the templates of the same names beside this
                                                  file (server.py is `bundle_server.py`), copied as they are
    model/                                        config, safetensors weights, tokenizer (and sentence-transformers
                                                  pooling) files
    bundle.json                                   the model's name, kind (chat | embeddings | classification), date
    requirements.txt, Dockerfile, README.md       pinned to the versions here; a Docker Space on port 7860, with
                                                  curl and `openai` examples

`zip_bundle` packs the folder for download. A LoRA (or other PEFT) adapter is merged into a float32 copy of its
base and checked (the merged model must give the adapter's logits on a probe) before it is saved as one plain
model in `model/`: the bundle then needs no peft (nor a peft version matching the one that saved the adapter),
loads like any model, and is no bigger than the base it would have to ship anyway.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from services.core.errors import PlaygroundError, UnsafeWeights
from services.models.entries import TRAINED_PREFIX, ResolvedModel
from services.serve.bundle_files import PORT, dockerfile, readme, requirements

__all__ = ["PORT", "build", "dockerfile", "kind_of", "model_name", "readme", "requirements", "zip_bundle"]

_HERE = Path(__file__).resolve().parent
TEMPLATES = {"server.py": "bundle_server.py", "bundle_engine.py": "bundle_engine.py",
             "bundle_wire.py": "bundle_wire.py"}  # fmt: skip
# The kind of server, and the playground task its model is loaded (and checked) for.
KINDS = {"chat": "text-generation", "embeddings": "sentence-similarity", "classification": "text-classification"}
_MODEL_FILES = {
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model",
    "sentencepiece.bpe.model", "chat_template.jinja", "chat_template.json", "README.md", "onnx_report.json",
}  # fmt: skip
_SENTENCE_FILES = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"}
_SENTENCE_MODULES = {"Transformer", "Pooling", "Normalize"}  # what bundle_engine.py runs


def _pickled(name: str) -> PlaygroundError:
    return UnsafeWeights(
        f"'{name}' has only pickled weights (*.bin): a server bundle ships safetensors weights only, since loading a "
        "pickle can run code hidden in it. Save the model again with safe_serialization=True, then export it."
    )


def model_name(model_id: str) -> str:
    """The name the bundle serves the model as: its id, a folder's name (never a server path), a trained model's
    name without its prefix."""
    from services.models.adapters import shown_name

    return shown_name(model_id.rstrip("/\\")).removeprefix(TRAINED_PREFIX)


def kind_of(resolved: ResolvedModel, name: str) -> str:
    """chat, embeddings or classification, from what the model can do; a sentence for anything else."""
    from services.models.catalog import describe_tasks, tasks_for_config

    tasks = set(resolved.tasks)
    if not tasks and resolved.source == "hub" and not Path(resolved.location).is_dir():
        from services.hub import push as hub

        config = hub.model_file(resolved.location, "config.json")
        tasks = set(tasks_for_config(json.loads(config.read_text(encoding="utf-8")))) if config else set()
    if "text-classification" in tasks:
        return "classification"
    if "text-generation" in tasks:
        return "chat"
    if "sentence-similarity" in tasks:
        return "embeddings"
    raise PlaygroundError(
        f"'{name}' is a model for {describe_tasks(sorted(tasks))}: a server bundle serves a chat or text-generation "
        "model, a sentence-embedding model or a text classifier."
    )


def build(model_id: str, output_dir: Path, owner: str | None = None) -> dict:
    """Write the server bundle of `model_id` (as `owner` sees it) in `output_dir`, which must be new or empty.
    Returns {"folder", "kind", "model", "files": [relative paths], "bytes"}."""
    from services.models import catalog

    resolved = catalog.resolve(model_id, owner)
    name = model_name(model_id)
    kind = kind_of(resolved, name)
    out = Path(output_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PlaygroundError(f"The folder '{out.name}' already holds files: give the bundle a new, empty folder.")
    work = out.with_name(out.name + ".partial")  # written here, renamed when complete
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if resolved.source == "adapter":
            _merge_adapter(resolved, kind, name, work / "model")
        else:
            _copy_model(_loaded_folder(model_id, resolved, kind, name, owner), work / "model", kind, name)
        for target, template in TEMPLATES.items():
            shutil.copyfile(_HERE / template, work / target)
        now = datetime.now(UTC)
        meta = {"format": 1, "name": name, "kind": kind, "tasks": [KINDS[kind]], "model_folder": "model",
                "created": now.isoformat(timespec="seconds"), "created_unix": int(now.timestamp()),
                "adapter": _adapter_note(resolved)}  # fmt: skip
        (work / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (work / "requirements.txt").write_text(requirements(work / "model", kind), encoding="utf-8")
        (work / "Dockerfile").write_text(dockerfile(), encoding="utf-8")
        (work / "README.md").write_text(readme(name, kind, meta["adapter"]), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    total = sum((out / f).stat().st_size for f in files)
    return {"folder": str(out), "kind": kind, "model": name, "files": files, "bytes": total}


def _adapter_note(resolved: ResolvedModel) -> dict | None:
    if resolved.source != "adapter" or resolved.base is None:
        return None
    from services.models.adapters import shown_name

    return {"base": shown_name(resolved.base.id), "merged": True}


def _loaded_folder(model_id: str, resolved: ResolvedModel, kind: str, name: str, owner: str | None) -> Path:
    """The model's local folder, once the playground has loaded it for the bundle's task (which checks it)."""
    from services.models import loading

    try:
        loaded = loading.load(model_id, KINDS[kind], owner=owner)
    except UnsafeWeights as err:
        raise _pickled(name) from err
    if kind == "chat" and getattr(loaded.model.config, "is_encoder_decoder", False):
        raise PlaygroundError(f"'{name}' is an encoder-decoder (seq2seq) model: a server bundle serves decoder-only "
                              "chat and text-generation models.")  # fmt: skip
    if Path(loaded.location).is_dir():
        return Path(loaded.location)
    return _hub_folder(resolved.location)


def _hub_folder(repo_id: str) -> Path:
    """A Hub model's files that a bundle copies (from the local cache; fetched when missing)."""
    from huggingface_hub import snapshot_download

    from services.core.config import get_settings

    settings = get_settings()
    patterns = [*_MODEL_FILES, *_SENTENCE_FILES, "*.safetensors", "*.safetensors.index.json", "*_*/*.json"]
    return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=settings.offline,
                                  token=False if settings.on_space else None))  # fmt: skip


def _sentence_dirs(folder: Path, name: str) -> list[str]:
    """The sub-folders of the sentence-transformers modules to copy; a sentence for modules the bundle cannot run."""
    from services.serve.bundle_engine import POOLING, pooling_modes, sentence_modules

    modules = sentence_modules(folder)
    unknown = sorted({kind for kind, _ in modules} - _SENTENCE_MODULES)
    if unknown:
        raise PlaygroundError(f"'{name}' uses the sentence-transformers module(s) {', '.join(unknown)}, which a "
                              "server bundle does not run (only transformer, pooling, normalisation).")  # fmt: skip
    modes = pooling_modes(folder)
    if len(modes) != 1 or modes[0] not in POOLING:
        raise PlaygroundError(f"'{name}' pools its vectors by {' + '.join(map(str, modes))}; a server bundle pools "
                              f"by one of {', '.join(POOLING)}.")  # fmt: skip
    return [path for _, path in modules if path]


def _copy_model(source: Path, target: Path, kind: str, name: str) -> None:
    """Copy what the server loads: config, safetensors weights (an ONNX export: its graph and report), tokenizer
    (and sentence-transformers) files."""
    from services.models import onnx_runtime

    files = [p for p in source.iterdir() if p.is_file()]
    if onnx_runtime.is_export(source):  # the graph the playground runs (int8 when there is one) and its report
        graph = onnx_runtime.graph_path(source)[0]
        files = [p for p in files if p.name in _MODEL_FILES or p == graph]
    elif not any(p.name.endswith(".safetensors") for p in files):
        if any(p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl") for p in files):
            raise _pickled(name)
        raise PlaygroundError(f"'{name}' has no weights file (*.safetensors) to put in a server bundle.")
    target.mkdir(parents=True)
    for path in files:
        if path.name in _MODEL_FILES or path.name.endswith((".safetensors", ".safetensors.index.json", ".onnx")):
            _copy(path, target / path.name)
    if kind == "embeddings":
        _copy_sentence_files(source, target, name)


def _copy_sentence_files(source: Path, target: Path, name: str) -> None:
    """modules.json and the like, and the JSON settings of the pooling and normalisation modules."""
    for sub in ["", *_sentence_dirs(source, name)]:
        for path in (source / sub).glob("*.json"):
            if sub or path.name in _SENTENCE_FILES:
                (target / sub).mkdir(parents=True, exist_ok=True)
                _copy(path, target / sub / path.name)


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)  # not copy2: the packs' weights are private to this machine's user (0600)
    target.chmod(0o644)


def _merge_adapter(resolved: ResolvedModel, kind: str, name: str, target: Path) -> None:
    """The adapter merged into a fresh float32 copy of its base, checked on a probe, saved as a plain model."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from services.core.config import get_settings
    from services.models import adapters, packs
    from services.models.loading import auto_class_name

    base, task, settings = resolved.base, KINDS[kind], get_settings()
    location = str(packs.ensure_ready(base.id)) if base.source == "packaged" else base.location
    common = {"local_files_only": settings.offline or base.is_local, "token": False if settings.on_space else None}
    config = AutoConfig.from_pretrained(location, **common)
    if kind == "chat" and getattr(config, "is_encoder_decoder", False):
        raise PlaygroundError(f"'{name}' adapts an encoder-decoder (seq2seq) model: a server bundle serves "
                              "decoder-only chat and text-generation models.")  # fmt: skip
    if getattr(config, "quantization_config", None) is not None:  # merge into float weights, never quantized ones
        del config.quantization_config
    auto_class = getattr(transformers, adapters.prepare_base(resolved, task, config) or auto_class_name(task, config))
    try:
        model = auto_class.from_pretrained(location, config=config, dtype=torch.float32, use_safetensors=True,
                                           **common)  # fmt: skip
    except OSError as err:
        raise _pickled(adapters.shown_name(base.id)) from err
    tokenizer = AutoTokenizer.from_pretrained(adapters.tokenizer_location(resolved, location), **common)
    _, peft_model = adapters.attach(model.eval(), resolved)
    probe = tokenizer(["The movie was very good and I love it."], return_tensors="pt")
    with torch.no_grad():
        before = _probe_output(peft_model, probe)
        merged = peft_model.merge_and_unload().eval()
        after = _probe_output(merged, probe)
    if float((before - after).abs().max()) > 1e-3 * max(1.0, float(before.abs().max())):
        raise PlaygroundError(f"Merging the adapter '{name}' into its base went wrong (the merged model does not "
                              "answer like the adapter), so no bundle was written.")  # fmt: skip
    merged.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    for path in target.iterdir():
        path.chmod(0o644)
    if kind == "embeddings" and Path(location).is_dir():  # the base's pooling files
        _copy_sentence_files(Path(location), target, name)


def _probe_output(model, probe):
    out = model(**probe)
    logits = getattr(out, "logits", None)
    return (logits if logits is not None else out.last_hidden_state).float()


def zip_bundle(folder: Path) -> Path:
    """The bundle folder as `<folder>.zip` beside it (weights stored as they are: they do not compress)."""
    folder = Path(folder).resolve()
    if not (folder / "bundle.json").is_file():
        raise PlaygroundError(f"'{folder.name}' is not a server bundle (it has no bundle.json).")
    target = folder.with_name(folder.name + ".zip")
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            packing = zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
            archive.write(path, Path(folder.name, path.relative_to(folder)).as_posix(), compress_type=packing)
    partial.replace(target)
    return target
