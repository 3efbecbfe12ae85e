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

import importlib.metadata
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from services.core.errors import PlaygroundError, UnsafeWeights
from services.models.entries import TRAINED_PREFIX, ResolvedModel

PORT = 7860  # the port a Docker Space serves
_HERE = Path(__file__).resolve().parent
TEMPLATES = {"server.py": "bundle_server.py", "bundle_engine.py": "bundle_engine.py",
             "bundle_wire.py": "bundle_wire.py"}  # fmt: skip
# The kind of server, and the playground task its model is loaded (and checked) for.
KINDS = {"chat": "text-generation", "embeddings": "sentence-similarity", "classification": "text-classification"}
_MODEL_FILES = {
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model",
    "sentencepiece.bpe.model", "chat_template.jinja", "chat_template.json", "README.md",
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
    """Copy what the server loads: config, safetensors weights, tokenizer (and sentence-transformers) files."""
    files = [p for p in source.iterdir() if p.is_file()]
    if not any(p.name.endswith(".safetensors") for p in files):
        if any(p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl") for p in files):
            raise _pickled(name)
        raise PlaygroundError(f"'{name}' has no weights file (*.safetensors) to put in a server bundle.")
    target.mkdir(parents=True)
    for path in files:
        if path.name in _MODEL_FILES or path.name.endswith((".safetensors", ".safetensors.index.json")):
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


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package).split("+")[0]  # 2.5.1+cpu: the CPU index has 2.5.1
    except importlib.metadata.PackageNotFoundError:
        return None


def requirements(model_folder: Path, kind: str) -> str:
    """The server's packages, pinned to the versions this playground runs (and was tested) with."""
    packages = ["fastapi", "uvicorn", "torch", "transformers", "tokenizers", "safetensors", "numpy"]
    if kind == "chat":
        packages.append("jinja2")  # chat templates
    if not (model_folder / "tokenizer.json").is_file() and any(model_folder.glob("*.model")):
        packages += ["sentencepiece", "protobuf"]  # a slow SentencePiece tokenizer only
    lines = ["# Pinned to the versions the HF Playground exported this bundle with (an adapter is merged: no peft)."]
    lines += [f"{p}=={v}" if (v := _version(p)) else p for p in packages]
    return "\n".join(lines) + "\n"


def dockerfile() -> str:
    return f"""FROM python:3.11-slim

# A Hugging Face Space runs the container as the user with id 1000.
RUN useradd -m -u 1000 user
WORKDIR /home/user/app

# torch's CPU wheel (no CUDA libraries: a far smaller image); drop --extra-index-url for a GPU image.
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=user . .
USER user
ENV HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
EXPOSE {PORT}
CMD ["uvicorn", "server:app", "--host", "0.0.0.0", "--port", "{PORT}"]
"""


def readme(name: str, kind: str, note: dict | None = None) -> str:
    """The bundle's README: a Docker Space's front matter, how to run it, and examples for its model."""
    origin = f" (a PEFT adapter on {note['base']}, merged into it)" if note else ""
    return f"""---
title: {name[:30]}
emoji: 🤗
colorFrom: yellow
colorTo: indigo
sdk: docker
app_port: {PORT}
pinned: false
---

# {name}: an OpenAI-compatible {kind} server

A server bundle exported from the HF Playground: the {kind} model `{name}`{origin} behind OpenAI's API, with
FastAPI and uvicorn. It needs no code of the playground, and nothing from the network once its packages are in.

## Run it

- **Docker**: `docker build -t {_slug(name)} . && docker run -p {PORT}:{PORT} {_slug(name)}`
- **A Hugging Face Space**: create a Space with the Docker SDK and push this folder to it (the front matter above
  says `sdk: docker`, `app_port: {PORT}`).
- **Plain Python**: `pip install -r requirements.txt && uvicorn server:app --host 0.0.0.0 --port {PORT}`

`GET /health` answers 503 while the model loads (a few seconds), then 200. `GET /info` shows what it serves and its
caps, `/docs` the API. Settings (environment variables, or a Space's secrets): `API_KEY` (then every request
needs `Authorization: Bearer <key>`), `MAX_TOKENS` (the cap on `max_tokens`, 1024), `DEVICE` (`cpu` or `cuda`).

## Examples

Below, `http://localhost:{PORT}` is the server; on a Space use `https://<user>-<space>.hf.space`.

{_examples(name, kind)}"""


_CURL = 'curl <URL><PATH> -H "Content-Type: application/json" -H "Authorization: Bearer $API_KEY" \\\n  -d '
_CLIENT = 'from openai import OpenAI\n\nclient = OpenAI(base_url="<URL>/v1", api_key="the API_KEY, if set")\n'
_EXAMPLES = {  # per kind: (shell, python); <URL>, <MODEL> (a JSON string) and <PATH> are filled in
    "chat": (
        """<CURL:/v1/chat/completions>'{"model": <MODEL>, "messages": [{"role": "user", "content": "Hello!"}], \
"max_tokens": 64}'

# streamed, token by token (server-sent events ending in data: [DONE])
<STREAM:/v1/chat/completions>'{"model": <MODEL>, "messages": [{"role": "user", "content": "Hello!"}], "stream": true}'

<CURL:/v1/completions>'{"model": <MODEL>, "prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}'""",
        """<CLIENT>messages = [{"role": "user", "content": "Hello! Who are you?"}]
answer = client.chat.completions.create(model=<MODEL>, messages=messages, max_tokens=64)
print(answer.choices[0].message.content)

for chunk in client.chat.completions.create(model=<MODEL>, messages=messages, stream=True):
    print(chunk.choices[0].delta.content or "", end="", flush=True)

text = client.completions.create(model=<MODEL>, prompt="Once upon a time", max_tokens=32, temperature=0)
print(text.choices[0].text)""",
    ),
    "embeddings": (
        """<CURL:/v1/embeddings>'{"model": <MODEL>, "input": ["A first sentence.", "Another one."]}'

# texts ranked by similarity to a query (text-embeddings-inference's /rerank)
<CURL:/rerank>'{"query": "Where is Paris?", "texts": ["Paris is in France.", "Berlin is in Germany."]}'""",
        """<CLIENT>result = client.embeddings.create(model=<MODEL>, input=["A first sentence.", "Another one."])
vectors = [row.embedding for row in result.data]  # normalised: a dot product is a cosine similarity
print(len(vectors), len(vectors[0]))""",
    ),
    "classification": (
        """<CURL:/predict>'{"inputs": ["I love this movie!", "That was a waste of time."]}'""",
        """import os

import httpx
<CLIENT>print([m.id for m in client.models.list().data])

# the openai package has no classification call: any HTTP client does
headers = {"Authorization": f"Bearer {os.environ.get('API_KEY', '')}"}
scores = httpx.post("<URL>/predict", json={"inputs": "I love this movie!"}, headers=headers).json()
print(scores[0]["label"], scores[0]["score"])  # every label, best first""",
    ),
}


def _examples(name: str, kind: str) -> str:
    """Ready curl and Python examples for the bundle's kind of model."""
    shell, python = _EXAMPLES[kind]
    for marker, curl in (("<CURL:", _CURL), ("<STREAM:", _CURL.replace("curl ", "curl -N ", 1))):
        while marker in shell:
            at, end = shell.index(marker), shell.index(">", shell.index(marker))
            shell = shell[:at] + curl.replace("<PATH>", shell[at + len(marker) : end]) + shell[end + 1 :]
    text = f"```bash\n{shell}\n```\n\n```python\n{python.replace('<CLIENT>', _CLIENT)}\n```\n"
    return text.replace("<URL>", f"http://localhost:{PORT}").replace("<MODEL>", json.dumps(name))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "model-server"


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
