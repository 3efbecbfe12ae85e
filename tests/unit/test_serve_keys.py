"""The REST API's pieces that need no server: playground keys, callers, request checks and snippets."""

from __future__ import annotations

import json

import pytest

from services.serve import auth, generate, snippets
from services.serve.errors import ApiError


def test_a_key_names_its_owner_and_cannot_be_forged(monkeypatch):
    key = auth.api_key("anon:abc123")
    assert key.startswith("pg-") and auth.owner_of_key(key) == "anon:abc123"
    assert auth.api_key("anon:abc123") == key  # stable: the same visitor always has the same key
    digest = key[3:].rpartition(".")[2]
    other = auth.api_key("hf:alice")
    forged = "pg-" + other[3:].rpartition(".")[0] + "." + digest  # alice's name with someone else's signature
    assert auth.owner_of_key(forged) is None
    assert auth.owner_of_key("pg-!!!.zz") is None and auth.owner_of_key("sk-1234") is None


def test_callers_locally_and_with_a_server_key(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_API_KEY", raising=False)
    assert auth.caller(None).owner.startswith("cli:")
    assert auth.caller("Bearer anything-at-all").owner.startswith("cli:")  # locally open, like vLLM
    assert auth.caller(f"Bearer {auth.api_key('hf:bob')}").owner == "hf:bob"
    monkeypatch.setenv("PLAYGROUND_API_KEY", "server-secret")
    with pytest.raises(auth.Unauthorized, match="needs an API key"):
        auth.caller(None)
    with pytest.raises(auth.Unauthorized, match="not valid"):
        auth.caller("Bearer wrong")
    assert auth.caller("Bearer server-secret").owner.startswith("cli:")


def _chat(**extra):
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (_chat(temperature=3), 400, "temperature"),
        (_chat(top_p="a"), 400, "top_p"),
        (_chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
        (_chat(max_tokens=0), 400, "max_tokens"),
        (_chat(max_tokens=10**9), 422, "cap of"),
        (_chat(seed=-1), 400, "seed"),
        (_chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), 400, "text parts"),
        (_chat(messages="hi"), 400, "list"),
    ],
)
def test_chat_requests_are_checked(body, status, needle):
    with pytest.raises(ApiError) as caught:
        generate.parse(body, "chat.completion")
    assert caught.value.status == status and needle in caught.value.message
    assert set(caught.value.body()["error"]) == {"message", "type", "code", "param"}


def test_a_good_request_becomes_generation_settings():
    gen = generate.parse(_chat(temperature=0.7, top_p=0.9, seed=3, stop="\n", max_tokens=5,
                               messages=[{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                                         {"role": "user", "content": "hi"}]), "chat.completion")  # fmt: skip
    assert gen.params == {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "seed": 3}
    assert gen.prompt[0] == {"role": "system", "content": "Be brief."} and gen.stop == ["\n"]
    assert generate.parse(_chat(temperature=0), "chat.completion").params == {"do_sample": False}
    completion = generate.parse({"model": "m", "prompt": ["Once"]}, "text_completion")
    assert completion.prompt == "Once" and not completion.chat


def test_snippets_name_the_model_endpoint_and_never_the_key():
    parts = snippets.snippets("https://x.hf.space/", "trained:it's-mine", "chat")
    assert "https://x.hf.space/v1/chat/completions" in parts["curl"]
    assert "$PLAYGROUND_API_KEY" in parts["curl"] and "PLAYGROUND_API_KEY" in parts["python"]
    assert "pg-" not in "".join(parts.values())
    compile(parts["python"], "snippet.py", "exec")  # the Python snippet is valid Python
    payload = parts["curl"].split("-d '", 1)[1].rstrip("'").replace("'\\''", "'")
    assert json.loads(payload)["model"] == "trained:it's-mine"  # the shell quoting survives a quote in a name
    assert snippets.kind_of(("sentence-similarity", "feature-extraction")) == "embeddings"
    assert snippets.kind_of(("text-classification",)) == "classification"
    with pytest.raises(Exception, match="Pipelines"):
        snippets.kind_of(("fill-mask",))


def test_the_cli_prints_the_same_key_the_server_accepts(capsys):
    from services.__main__ import main

    assert main(["api-key", "--owner", "anon:cli-test"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert auth.owner_of_key(printed["api_key"]) == "anon:cli-test"


def test_admission_answers_429_when_saturated_and_frees_places():
    from services.serve.api import Admission

    gate = Admission(total=3, per_owner=2)
    gate.enter("a")
    gate.enter("a")
    with pytest.raises(ApiError) as mine:
        gate.enter("a")  # a third of the same caller's
    assert mine.value.status == 429 and mine.value.code == "rate_limit_exceeded"
    gate.enter("b")
    with pytest.raises(ApiError) as full:
        gate.enter("c")  # anyone, once the server holds its total
    assert full.value.status == 429 and "retry" in full.value.message
    gate.leave("a")
    gate.enter("c")
