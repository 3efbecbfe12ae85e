"""The REST API on the app as a public Space runs it: who may call, and who sees which `trained:` model.

The Space-mode app (its own process, the Hub emulator as the Hub) decides the caller from the bearer key alone:
a Hugging Face token (the emulator says whose), a playground key (signed with the app's secret), or nothing (an
anonymous caller who sees the packaged models only). Another owner's model answers exactly like a missing one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil

import httpx
import openai
import pytest

ALICE, BOB = "hf_write_alice_token", "hf_write_bob_token"
MODEL = "alices-chat"


def _secret(space_app) -> bytes:
    return (space_app.home / ".owner-secret").read_bytes().strip()


def _owner_folder(space_app, owner: str):
    key = hmac.new(_secret(space_app), owner.encode(), hashlib.sha256).hexdigest()[:20]
    return space_app.home / "models" / key


@pytest.fixture(scope="module")
def alices_model(space_app, tiny_chat_model):
    """A chat model alice trained here (a copy of the tiny chat model in her own models folder)."""
    folder = _owner_folder(space_app, "hf:alice") / MODEL
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_chat_model, folder, dirs_exist_ok=True)
    return f"trained:{MODEL}"


def _client(space_app, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=space_app.url.rstrip("/") + "/v1", api_key=key, max_retries=0, timeout=60)


def _ids(space_app, key: str | None) -> list[str]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(space_app.url.rstrip("/") + "/v1/models", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


def test_a_wrong_key_is_refused_in_openai_shape(space_app):
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(space_app, "sk-not-a-key-of-this-server").models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key" and "not valid" in caught.value.body["message"]
    forged = "pg-" + base64.urlsafe_b64encode(b"hf:alice").decode().rstrip("=") + "." + "0" * 32
    assert httpx.get(space_app.url + "v1/models", headers={"authorization": f"Bearer {forged}"}).status_code == 401


def test_each_caller_sees_only_their_own_trained_models(space_app, alices_model):
    assert alices_model in _ids(space_app, ALICE)
    assert alices_model not in _ids(space_app, BOB)
    assert alices_model not in _ids(space_app, None)  # anonymous: the packaged models only
    assert "smollm2-135m-instruct" in _ids(space_app, None)


def test_another_owners_model_is_a_404_like_a_missing_one(space_app, alices_model):
    hello = [{"role": "user", "content": "hi"}]
    answer = _client(space_app, ALICE).chat.completions.create(model=alices_model, messages=hello, max_tokens=3)
    assert answer.choices[0].message.role == "assistant" and answer.usage.completion_tokens <= 3
    with pytest.raises(openai.NotFoundError) as theirs:
        _client(space_app, BOB).chat.completions.create(model=alices_model, messages=hello, max_tokens=3)
    with pytest.raises(openai.NotFoundError) as missing:
        _client(space_app, BOB).chat.completions.create(model="trained:nothing-here", messages=hello)
    assert theirs.value.body["code"] == missing.value.body["code"] == "model_not_found"
    said = theirs.value.body["message"].replace(alices_model, "ID")
    assert said == missing.value.body["message"].replace("trained:nothing-here", "ID")  # word for word
    anonymous = httpx.post(space_app.url + "v1/chat/completions", json={"model": alices_model, "messages": hello})
    assert anonymous.status_code == 404 and anonymous.json()["error"]["code"] == "model_not_found"


def test_a_playground_key_acts_as_its_visitor(space_app, alices_model):
    sign = hmac.new(_secret(space_app), b"api-key\0hf:alice", hashlib.sha256).hexdigest()[:32]
    key = "pg-" + base64.urlsafe_b64encode(b"hf:alice").decode().rstrip("=") + "." + sign
    assert alices_model in _ids(space_app, key)
