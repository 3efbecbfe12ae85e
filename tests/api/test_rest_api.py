"""The OpenAI-compatible REST API on the running app, through the official `openai` client and raw HTTP.

Uses the packaged models: SmolLM2 for chat and completions (short answers, greedy), MiniLM for embeddings.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import httpx
import openai
import pytest

CHAT = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(scope="module")
def base(live_app):
    return live_app["url"].rstrip("/")


@pytest.fixture(scope="module")
def oa(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key="anything-locally", max_retries=0, timeout=120)


def test_health_info_and_docs(base):
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    info = httpx.get(f"{base}/info").json()
    assert info["max_tokens"] >= 16 and info["docs"] == "/docs"
    assert "/v1/chat/completions" in httpx.get(f"{base}/openapi.json").json()["paths"]
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.get(f"{base}/").status_code == 200  # the Gradio page is still served beside it


def test_models_lists_packaged_models(oa):
    ids = [m.id for m in oa.models.list().data]
    assert CHAT in ids and EMBED in ids
    assert oa.models.retrieve(CHAT).id == CHAT
    with pytest.raises(openai.NotFoundError):
        oa.models.retrieve("no-such-model-anywhere")


def test_chat_not_streamed_equals_a_direct_call(oa):
    from services.pipelines import stream

    answer = oa.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=12, temperature=0)
    direct = list(stream(CHAT, HELLO, max_new_tokens=12, do_sample=False))[-1]["text"]
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == direct
    assert answer.usage.completion_tokens <= 12 and answer.usage.prompt_tokens > 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert choice.finish_reason in ("stop", "length")


def test_the_fast_cpu_copy_answers_like_the_float32_model(oa):
    fast = oa.chat.completions.create(model="smollm2-135m-instruct-fast-cpu", messages=HELLO, max_tokens=12,
                                      temperature=0)  # fmt: skip
    plain = oa.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=12, temperature=0)
    assert fast.choices[0].message.content == plain.choices[0].message.content
    assert fast.usage.completion_tokens == plain.usage.completion_tokens


def test_chat_streamed_with_usage_and_length(oa):
    chunks = list(oa.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=6, temperature=0, stream=True,
                                             stream_options={"include_usage": True}))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = oa.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=6, temperature=0)
    assert text == whole.choices[0].message.content and text
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons == ["length"]  # six tokens cannot finish a sentence
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


def test_stream_ends_with_done(base):
    body = {"model": CHAT, "messages": HELLO, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_completions_and_stop(oa):
    done = oa.completions.create(model=CHAT, prompt="One, two, three,", max_tokens=8, temperature=0)
    assert done.object == "text_completion" and done.choices[0].text
    first = done.choices[0].text.strip()[:1]
    if first:
        cut = oa.completions.create(model=CHAT, prompt="One, two, three,", max_tokens=8, temperature=0, stop=[first])
        assert first not in cut.choices[0].text and cut.choices[0].finish_reason == "stop"


def test_embeddings_equal_sentence_transformers(oa):
    from sentence_transformers import SentenceTransformer

    from services.models import loading

    texts = ["A cat sits on the mat.", "Stocks fell sharply today."]
    got = oa.embeddings.create(model=EMBED, input=texts)  # the client asks for base64 and decodes it
    floats = oa.embeddings.create(model=EMBED, input=texts, encoding_format="float")
    reference = SentenceTransformer(loading.load(EMBED, "sentence-similarity").location, device="cpu").encode(texts)
    for row, same, ref in zip(got.data, floats.data, reference, strict=True):
        assert len(row.embedding) == 384
        assert max(abs(a - b) for a, b in zip(row.embedding, ref, strict=True)) < 1e-4
        assert max(abs(a - b) for a, b in zip(same.embedding, row.embedding, strict=True)) < 1e-6
    assert got.usage.prompt_tokens > 4


def test_rerank_and_predict(base):
    ranked = httpx.post(f"{base}/rerank", json={"model": EMBED, "query": "a pet animal",
                        "texts": ["the bond market", "my dog and cat"]}).json()  # fmt: skip
    assert [r["index"] for r in ranked] == [1, 0] and ranked[0]["score"] > ranked[1]["score"]
    labels = httpx.post(f"{base}/predict", json={"model": "minilm-sentiment", "inputs": "I love this film."}).json()
    assert {"label", "score"} <= set(labels[0]) and abs(sum(x["score"] for x in labels) - 1) < 1e-3


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"messages": HELLO}, 400, "model"),
        ({"model": CHAT}, 400, "messages"),
        ({"model": CHAT, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
        ({"model": "not a model!", "messages": HELLO}, 404, "does not exist"),
        ({"model": "nobody/no-such-model", "messages": HELLO}, 404, "offline"),  # a Hub id, and no Hub here
        ({"model": CHAT, "messages": HELLO, "max_tokens": 10**9}, 422, "cap"),
        ({"model": CHAT, "messages": HELLO, "n": 3}, 400, "n=1"),
        ({"model": CHAT, "messages": [{"role": "user", "content": "word " * 210_000}]}, 413, "characters"),
    ],
)
def test_bad_requests_get_openai_errors(base, body, status, needle):
    response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == status
    assert needle in _error(response)["message"]


def test_malformed_json_and_another_owners_model(base):
    response = httpx.post(f"{base}/v1/chat/completions", content=b"{not json", timeout=30)
    assert response.status_code == 400 and "JSON" in _error(response)["message"]
    response = httpx.post(f"{base}/v1/chat/completions", json={"model": "trained:someone-elses", "messages": HELLO})
    assert response.status_code == 404 and _error(response)["code"] == "model_not_found"


def test_long_prompt_over_context_is_refused_before_generating(oa):
    with pytest.raises(openai.APIStatusError) as caught:
        oa.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "tok " * 9000}], max_tokens=8)
    assert caught.value.status_code == 413 and "tokens" in caught.value.message


def test_disconnect_mid_stream_stops_the_generation(base):
    from services.core.limits import courtesy

    body = {"model": CHAT, "messages": [{"role": "user", "content": "Write a long story about the sea."}],
            "max_tokens": 400, "stream": True}  # fmt: skip
    running = 0
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as response:
        for i, _line in enumerate(response.iter_lines()):
            if i >= 3:
                running = courtesy()._long
                break  # leave after a few tokens: the connection is closed
    assert running == 1
    deadline = time.monotonic() + 20
    while courtesy()._long and time.monotonic() < deadline:  # the generation's worker ends after its token
        time.sleep(0.1)
    assert courtesy()._long == 0


def test_concurrent_embedding_clients(oa):
    from services.models import loading
    from services.pipelines.embeddings import embed

    texts = [f"Sentence number {i} about topic {i % 7}." for i in range(200)]
    direct = embed(loading.load(EMBED, "sentence-similarity"), texts).tolist()
    errors, results = [], {}
    lock = threading.Lock()

    def ask(i):
        try:
            row = oa.embeddings.create(model=EMBED, input=texts[i], encoding_format="float").data[0].embedding
            with lock:
                results[i] = row
        except Exception as err:  # counted below: none may fail
            errors.append(err)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        list(pool.map(ask, range(200)))
    assert not errors
    assert all(max(abs(a - b) for a, b in zip(results[i], direct[i], strict=True)) < 1e-4 for i in range(200))


def test_the_cli_serves_the_api_alone(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PLAYGROUND_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "services", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        ids = [m["id"] for m in httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()["data"]]
        assert EMBED in ids
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 404  # no UI: the API only
    finally:
        proc.terminate()
        proc.wait(timeout=20)
