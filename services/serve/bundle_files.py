"""The text files of a server bundle (`services.serve.bundle`): its pinned `requirements.txt`, its `Dockerfile` (a
Hugging Face Docker Space on port 7860) and its README with the Space's front matter and curl / `openai` examples.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

PORT = 7860  # the port a Docker Space serves


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
    if any(model_folder.glob("*.onnx")):
        packages.append("onnxruntime")  # an ONNX export runs there, not in torch
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
