"""The server bundle (`services/serve/bundle.py`): bundles built for a tiny random chat model and the packaged MiniLM,
each started as its own uvicorn process in its own folder (where the playground cannot be imported), and talked to
with the official `openai` client and raw HTTP. The packaged sentiment adapter is bundled too (merged) and served
in-process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import openai
import pytest

from services.core.errors import PlaygroundError
from services.serve import bundle

EMBED = "all-minilm-l6-v2"
HELLO = [{"role": "user", "content": "the movie was very good"}]
LONG_CONTEXT = 4096  # the chat bundle's config is given room for a generation long enough to leave mid-stream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A bundle's `python -m uvicorn server:app` on a free port, cwd = the bundle; always killed at the end."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder, self.port = Path(folder), _free_port()
        self.url, self.seen_503 = f"http://127.0.0.1:{self.port}", False
        self.log = (self.folder.parent / f"{self.folder.name}.log").open("w")
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the playground must not be needed
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.folder, env={**clean, "HF_HUB_OFFLINE": "1", **env}, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(f"{self.url}/health", timeout=2).status_code
                if status == 200:
                    return
                self.seen_503 |= status == 503  # up at once, while the model loads in the background
            time.sleep(0.2)
        pytest.fail(f"The bundle server never became healthy:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.folder.parent / f"{self.folder.name}.log").read_text()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, tiny_chat_model):
    root = tmp_path_factory.mktemp("bundles")
    chat = bundle.build(str(tiny_chat_model), root / "chat")
    config_path = Path(chat["folder"]) / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["max_position_embeddings"] = LONG_CONTEXT  # rotary positions: no weight depends on it
    config_path.write_text(json.dumps(config))
    embed = bundle.build(EMBED, root / "embed")
    return {"chat": chat, "embed": embed}


@pytest.fixture(scope="module")
def servers(bundles):
    """Both bundle servers, started side by side; killed whatever happens."""
    started = []
    try:
        started.append(Server(Path(bundles["chat"]["folder"]), MAX_TOKENS=str(LONG_CONTEXT - 96)))
        started.append(Server(Path(bundles["embed"]["folder"])))
        for server in started:
            server.wait_healthy()
        yield {"chat": started[0], "embed": started[1]}
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def chat(servers, bundles):
    oa = openai.OpenAI(base_url=f"{servers['chat'].url}/v1", api_key="unused", max_retries=0, timeout=60)
    return oa, bundles["chat"]["model"], servers["chat"].url


@pytest.fixture(scope="module")
def embed(servers):
    oa = openai.OpenAI(base_url=f"{servers['embed'].url}/v1", api_key="unused", max_retries=0, timeout=60)
    return oa, servers["embed"].url


def test_the_bundles_files(bundles):
    chat, embed = bundles["chat"], bundles["embed"]
    assert chat["kind"] == "chat" and chat["model"] == "chat-llama"
    assert embed["kind"] == "embeddings" and embed["model"] == EMBED
    for built in (chat, embed):
        folder = Path(built["folder"])
        assert {"server.py", "bundle_engine.py", "bundle_wire.py", "bundle.json", "requirements.txt", "Dockerfile",
                "README.md", "model/config.json", "model/model.safetensors", "model/tokenizer.json"} <= set(
            built["files"])  # fmt: skip
        assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in built["files"])
        assert (folder / "server.py").read_bytes() == (Path(bundle.__file__).parent / "bundle_server.py").read_bytes()
        meta = json.loads((folder / "bundle.json").read_text())
        assert meta["name"] == built["model"] and meta["kind"] == built["kind"] and meta["created"]
        pins = (folder / "requirements.txt").read_text()
        for package in ("fastapi", "uvicorn", "torch", "transformers", "tokenizers", "safetensors", "numpy"):
            assert f"\n{package}==" in pins
        assert "+cpu" not in pins and "peft" not in pins.splitlines()[1:]
        docker = (folder / "Dockerfile").read_text()
        assert docker.startswith("FROM python:3.11-slim") and "EXPOSE 7860" in docker and '"7860"' in docker
        readme = (folder / "README.md").read_text()
        assert readme.startswith("---\n") and "sdk: docker" in readme and "app_port: 7860" in readme
        assert f'model="{built["model"]}"' in readme and "curl http://localhost:7860" in readme
    assert {"model/modules.json", "model/1_Pooling/config.json"} <= set(embed["files"])
    assert embed["bytes"] == sum((Path(embed["folder"]) / f).stat().st_size for f in embed["files"])
    assert "jinja2==" in (Path(chat["folder"]) / "requirements.txt").read_text()
    with pytest.raises(PlaygroundError, match="already holds files"):
        bundle.build(EMBED, Path(embed["folder"]))


def test_zip_bundle(bundles):
    folder = Path(bundles["chat"]["folder"])
    archive = bundle.zip_bundle(folder)
    assert archive == folder.with_name("chat.zip") and archive.is_file()
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {f"chat/{f}" for f in bundles["chat"]["files"]} == names
        assert z.read("chat/bundle.json") == (folder / "bundle.json").read_bytes()


def test_models_health_and_info(chat, embed, servers):
    oa, name, url = chat
    assert servers["chat"].seen_503 or servers["embed"].seen_503  # /health: 503 until the model is loaded
    assert [m.id for m in oa.models.list().data] == [name]
    assert oa.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError):
        oa.models.retrieve("gpt-4o")
    info = httpx.get(f"{url}/info").json()
    assert info["kind"] == "chat" and info["context"] == LONG_CONTEXT and info["loaded"] is True
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert "/v1/chat/completions" in httpx.get(f"{url}/openapi.json").json()["paths"]
    assert [m.id for m in embed[0].models.list().data] == [EMBED]


def test_chat_streamed_and_not(chat):
    oa, name, _ = chat
    whole = oa.chat.completions.create(model=name, messages=HELLO, max_tokens=12, temperature=0)
    choice = whole.choices[0]
    assert whole.object == "chat.completion" and choice.message.role == "assistant"
    assert 1 <= whole.usage.completion_tokens <= 12 and whole.usage.prompt_tokens > 3
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    assert choice.finish_reason == ("length" if whole.usage.completion_tokens == 12 else "stop")
    stream = oa.chat.completions.create(model=name, messages=HELLO, max_tokens=12, temperature=0, stream=True,
                                        stream_options={"include_usage": True})  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_stop_and_seed(chat):
    oa, name, url = chat
    done = oa.completions.create(model=name, prompt="the movie was", max_tokens=24, temperature=0)
    text = done.choices[0].text
    assert done.object == "text_completion" and done.usage.completion_tokens >= 1
    if len(text.strip()) >= 8:  # a stop text inside the greedy answer cuts it there
        stop = text.strip()[4:7]
        cut = oa.completions.create(model=name, prompt="the movie was", max_tokens=24, temperature=0, stop=[stop])
        assert cut.choices[0].text == text[: text.index(stop)] and cut.choices[0].finish_reason == "stop"
    sampled = [oa.completions.create(model=name, prompt="the movie was", max_tokens=10, temperature=1.0, top_p=0.9,
                                     seed=7).choices[0].text for _ in range(2)]  # fmt: skip
    assert sampled[0] == sampled[1]
    lines = httpx.post(f"{url}/v1/completions", json={"model": name, "prompt": "a", "max_tokens": 3, "stream": True})
    assert lines.headers["content-type"].startswith("text/event-stream")
    assert lines.text.rstrip().endswith("data: [DONE]")


def test_errors_in_openais_shape(chat, embed):
    oa, name, url = chat
    with pytest.raises(openai.NotFoundError) as caught:
        oa.chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        oa.chat.completions.create(model=name, messages=HELLO, max_tokens=10**9)
    assert "cap" in caught.value.message
    with pytest.raises(openai.APIStatusError) as caught:
        oa.chat.completions.create(model=name, messages=[{"role": "user", "content": "good " * 5000}], max_tokens=8)
    assert caught.value.status_code == 413 and caught.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model=name, messages=HELLO, temperature=5)
    response = httpx.post(f"{url}/v1/chat/completions", content=b"{not json")
    error = response.json()["error"]
    assert response.status_code == 400 and "JSON" in error["message"]
    assert set(error) == {"message", "type", "code", "param"}
    assert httpx.post(f"{url}/v1/embeddings", json={"model": name, "input": "a"}).status_code == 404  # not served
    assert httpx.post(f"{embed[1]}/v1/embeddings", json={"model": EMBED, "input": []}).status_code == 400


def test_a_client_leaving_mid_stream_stops_the_generation(chat):
    _, name, url = chat
    body = {"model": name, "prompt": "the movie was", "max_tokens": 4000, "temperature": 0, "stream": True}
    before = httpx.get(f"{url}/info").json()["cancelled_generations"]
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
        for i, _line in enumerate(response.iter_lines()):
            if i == 4:  # a few tokens in
                assert httpx.get(f"{url}/info").json()["active_generations"] == 1
            if i >= 6:
                break  # leaving the iterator closes the connection
    # The generation ends after its current token (all 4000 tokens take over ten seconds on this tiny model).
    started, deadline, info = time.monotonic(), time.monotonic() + 5, {}
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/info").json()
        if info["active_generations"] == 0:
            break
        time.sleep(0.05)
    assert info["active_generations"] == 0 and info["cancelled_generations"] == before + 1
    assert time.monotonic() - started < 3


def test_embeddings_equal_sentence_transformers(embed, bundles):
    from sentence_transformers import SentenceTransformer

    oa, url = embed
    texts = ["The cat sits on the mat.", "Paris is the capital of France.", "I love this movie!"]
    expected = SentenceTransformer(str(Path(bundles["embed"]["folder"]) / "model"), device="cpu").encode(texts)
    as_base64 = oa.embeddings.create(model=EMBED, input=texts)  # the openai client asks for base64 and decodes it
    as_floats = oa.embeddings.create(model=EMBED, input=texts, encoding_format="float")
    for answer in (as_base64, as_floats):
        assert [d.index for d in answer.data] == [0, 1, 2] and answer.usage.prompt_tokens > 10
        for row, want in zip(answer.data, expected, strict=True):
            assert len(row.embedding) == 384
            assert max(abs(a - float(b)) for a, b in zip(row.embedding, want, strict=True)) < 1e-4
    ranked = httpx.post(f"{url}/rerank", json={"query": "What is the capital of France?", "texts": texts}).json()
    assert ranked[0]["index"] == 1 and ranked[0]["score"] > ranked[1]["score"]


def test_an_adapter_is_merged_and_served_with_a_key(tmp_path, monkeypatch):
    """The packaged LoRA sentiment adapter: merged into MiniLM in model/, served in-process (the same server.py),
    answering like the playground's own adapter; API_KEY makes the key required."""
    from fastapi.testclient import TestClient

    from services.models import loading
    from services.pipelines import run_loaded
    from services.serve import bundle_server

    built = bundle.build("minilm-sentiment", tmp_path / "sentiment")
    assert built["kind"] == "classification" and not any("adapter" in f for f in built["files"])
    meta = json.loads((tmp_path / "sentiment" / "bundle.json").read_text())
    assert meta["adapter"] == {"base": EMBED, "merged": True}
    monkeypatch.setenv("API_KEY", "s3cret")
    texts = ["I love this movie, it was wonderful!", "That was a terrible waste of time."]
    with TestClient(bundle_server.create_app(tmp_path / "sentiment")) as client:
        assert client.get("/health").status_code in (200, 503)  # open, even with a key
        assert client.post("/predict", json={"inputs": texts}).status_code == 401
        key = {"authorization": "Bearer s3cret"}
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = client.post("/predict", json={"inputs": texts}, headers=key).json()
    direct = run_loaded(loading.load("minilm-sentiment", "text-classification"), "text-classification", texts,
                        top_k=None)  # fmt: skip
    assert [r[0]["label"] for r in rows] == ["positive", "negative"]
    for row, want in zip(rows, direct, strict=True):
        assert {d["label"]: round(d["score"], 4) for d in row} == {d["label"]: round(d["score"], 4) for d in want}


def test_models_a_bundle_cannot_serve(tiny_models, tmp_path):
    with pytest.raises(PlaygroundError, match="server bundle serves"):
        bundle.build(str(tiny_models["bert-ner"]), tmp_path / "ner")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / name).write_bytes((tiny_models["bert-classifier"] / name).read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(PlaygroundError, match="pickled weights"):
        bundle.build(str(pickled), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
