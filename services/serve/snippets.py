"""Ready-to-run requests for one model of the REST API: curl, Python with the `openai` package, JavaScript.

What a model is served as follows from its tasks: a text generator is a chat model (`/v1/chat/completions`), a
sentence-embedding model answers `/v1/embeddings` (and `/rerank`), a classifier `/predict`. The key in a snippet
is the environment variable `PLAYGROUND_API_KEY`, never the key itself: a snippet may be pasted anywhere.
"""

from __future__ import annotations

import json

from services.core.errors import PlaygroundError

KINDS = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings", "classification": "/predict"}


def kind_of(tasks: tuple[str, ...] | list[str]) -> str:
    """How the REST API serves a model with these tasks."""
    if "text-generation" in tasks:
        return "chat"
    if "text-classification" in tasks:
        return "classification"
    if "sentence-similarity" in tasks or "feature-extraction" in tasks:
        return "embeddings"
    raise PlaygroundError(
        "The REST API serves chat models, sentence-embedding models and text classifiers; this model is none of "
        "them. Try it in the Pipelines tab."
    )


def request_body(kind: str, model: str, text: str) -> dict:
    if kind == "chat":
        return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    if kind == "embeddings":
        return {"model": model, "input": [text]}
    return {"model": model, "inputs": text}


def snippets(base_url: str, model: str, kind: str, text: str = "Hello! What can you do?") -> dict[str, str]:
    """{"curl", "python", "javascript"} for one request to `model` at `base_url` (the server's root URL)."""
    base = base_url.rstrip("/")
    body = request_body(kind, model, text)
    path = KINDS[kind]
    curl = (
        f"curl {base}{path} \\\n  -H 'Content-Type: application/json' \\\n"
        f'  -H "Authorization: Bearer $PLAYGROUND_API_KEY" \\\n'
        f"  -d '{json.dumps(body).replace(chr(39), chr(39) + chr(92) + chr(39) + chr(39))}'"
    )
    javascript = (
        f'const response = await fetch("{base}{path}", {{\n  method: "POST",\n'
        '  headers: {"Content-Type": "application/json", Authorization: `Bearer ${process.env.PLAYGROUND_API_KEY}`},\n'
        f"  body: JSON.stringify({json.dumps(body)}),\n}});\nconsole.log(await response.json());"
    )
    return {"curl": curl, "python": _python(base, model, kind, text), "javascript": javascript}


def _python(base: str, model: str, kind: str, text: str) -> str:
    head = (
        "import os\n\nfrom openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base}/v1", api_key=os.environ["PLAYGROUND_API_KEY"])\n'
    )
    if kind == "chat":
        return head + (
            f"stream = client.chat.completions.create(\n    model={model!r},\n"
            f'    messages=[{{"role": "user", "content": {text!r}}}],\n    max_tokens=64,\n    stream=True,\n)\n'
            'for chunk in stream:\n    print(chunk.choices[0].delta.content or "", end="", flush=True)\n'
        )
    if kind == "embeddings":
        return head + (
            f"result = client.embeddings.create(model={model!r}, input=[{text!r}])\n"
            "print(len(result.data[0].embedding), result.data[0].embedding[:5])\n"
        )
    return (
        "import os\n\nimport httpx\n\n"
        f'response = httpx.post("{base}/predict", json={{"model": {model!r}, "inputs": {text!r}}},\n'
        '                      headers={"Authorization": f"Bearer {os.environ[\'PLAYGROUND_API_KEY\']}"})\n'
        "print(response.json())\n"
    )
