"""Attacks on the app as a public Space runs it (issue 13), sent the way an attacker sends them: real gradio_client
visitors and raw HTTP against `python app.py` started with SPACE_ID and the Space's own HF_TOKEN, the local Hub
emulator as the Hub (tests/space.py). Each test reproduces an attack that worked before and checks that it now
fails safe, and that the app keeps serving."""

from __future__ import annotations

import json
import time
import zipfile

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.api.conftest import wait_job
from tests.space import EVIL_MODEL, ROOT, SPACE_TOKEN

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def mallory(space_app):
    return Client(space_app.url, verbose=False)


@pytest.fixture(scope="module")
def alice(space_app):
    return Client(space_app.url, verbose=False)


def refused(client, *args, api_name: str) -> str:
    """The sentence an endpoint answers with (gradio_client raises it as an AppError)."""
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=api_name)
    return str(err.value)


def raw_call(url: str, api_name: str, data: list) -> tuple[str, str]:
    """An endpoint called over plain HTTP, as a script without gradio_client would: (event, payload)."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:
        event_id = http.post(f"gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        lines = http.get(f"gradio_api/call/{api_name}/{event_id}").text.splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events[-1], payloads[-1] if payloads else ""


def everything_shown(client) -> str:
    """All a visitor can read about their jobs: the list, each job with its log."""
    jobs = client.predict(api_name="/jobs")
    return json.dumps([jobs, *[client.predict(j["id"], api_name="/job") for j in jobs]])


def _finetune_yaml(model: str, **extra) -> str:
    config = {"task": "text-classification", "model": model,
              "dataset": {"source": "samples/sentiment", "label_column": "label"}, **extra}  # fmt: skip
    return json.dumps(config)  # JSON is YAML


# ---- 1. no visitor code ----------------------------------------------------------------------------------------


def test_remote_code_never_runs_on_the_space(space_app, mallory):
    sentence = refused(mallory, _finetune_yaml(EVIL_MODEL, trust_remote_code=True), "evil", api_name="/finetune")
    assert "trust_remote_code" in sentence and "turned off on this Space" in sentence
    for args, api in (
        (("text-classification", EVIL_MODEL, "hello", None), "/run"),
        (("text-classification", EVIL_MODEL, "hello", '{"trust_remote_code": true}'), "/run"),
        ((EVIL_MODEL, "hello", True), "/tokenize"),
    ):
        refused(mallory, *args, api_name=api)
    # A job that loads it without its code fails with a sentence, in a child process, and nothing runs.
    for job_id in (
        mallory.predict(EVIL_MODEL, api_name="/prepare_model"),
        mallory.predict(_finetune_yaml(EVIL_MODEL), "plain", api_name="/finetune"),
    ):
        assert wait_job(mallory, job_id, timeout=240)["status"] == "failed"
    assert not space_app.marker.exists(), space_app.marker.read_text()[:200]
    assert mallory.predict("zero-shot-classification", "all-minilm-l6-v2", "I like trains",
                           '{"candidate_labels": ["travel", "food"]}', api_name="/run")  # fmt: skip


# ---- 2. no server files ---------------------------------------------------------------------------------------


def test_a_server_path_is_never_read_as_a_visitor_file(space_app, mallory, alice):
    readme = str(ROOT / "README.md")
    assert "not one of your uploads" in refused(mallory, "steal", [readme], api_name="/rag_ingest")
    # Over plain HTTP (gradio_client would upload a file it can read itself): a path, and a path dressed as a file.
    fake = {"path": readme, "meta": {"_type": "gradio.FileData"}, "orig_name": "README.md"}
    for data in (["steal", [readme]], ["steal", [fake]], ["steal", readme]):
        event, payload = raw_call(space_app.url, "rag_ingest", data)
        assert event == "error", (data, payload)
    # Alice's own upload, staged for her job (kept: the job failed, she may start it again), is out of Mallory's
    # reach even when its path is known.
    notes = space_app.home.parent / "alice-notes.md"
    notes.write_text("---\ntitle: the spare key is under the blue flowerpot\n---\n")
    job = alice.predict("private", [handle_file(str(notes))], api_name="/rag_ingest")
    assert wait_job(alice, job, timeout=300)["status"] == "failed"
    staged = [str(p) for p in (space_app.home / "uploads").rglob("alice-notes*")]
    assert staged
    for path in staged:
        assert "not one of your uploads" in refused(mallory, "steal", [path], api_name="/rag_ingest")
    for source in (readme, "Makefile", "tests/data", "requirements.txt", "services"):
        refused(mallory, source, None, None, api_name="/preview_dataset")
    yaml_path = str(ROOT / "assets" / "datasets" / "samples" / "sentiment" / "train.csv")
    assert "YAML mapping" in refused(mallory, yaml_path, "x", api_name="/finetune")  # text, never opened


def test_owner_folders_cannot_be_computed_from_a_user_name(space_app):
    import hashlib

    guessed = hashlib.sha256(b"hf:alice").hexdigest()[:20]
    for base in ("models", "uploads", "rag", "tokenizers"):
        assert not (space_app.home / base / guessed).exists()


# ---- 3. decompression ------------------------------------------------------------------------------------------


def test_a_zip_bomb_is_stopped_while_it_unpacks(space_app, mallory, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for i in range(3):
            archive.writestr(f"part{i}.txt", ("all work and no play makes jack a dull boy\n" * 600_000))
    assert bomb.stat().st_size < 1_000_000
    before = space_app.rss_mb()
    job = wait_job(mallory, mallory.predict("bomb", [handle_file(str(bomb))], api_name="/rag_ingest"), timeout=300)
    text = json.dumps(job)
    assert "MB" in text and (job["status"] == "failed" or job["result"]["refused"]), text[:2000]
    assert space_app.rss_mb() - before < 300, "the app process itself never unpacked it"


# ---- 4. unbounded inputs -----------------------------------------------------------------------------------------


def test_huge_inputs_are_refused_with_the_cap(mallory):
    assert "200,000" in refused(mallory, "all-minilm-l6-v2", "x" * 5_000_000, True, api_name="/tokenize")
    assert "1,024" in refused(mallory, "smollm2-135m-instruct", "Hi", '{"max_new_tokens": 1000000}',
                              api_name="/generate")  # fmt: skip
    for count in (20_000, 51):  # the first is refused for its size, the second for its number of labels
        labels = json.dumps({"candidate_labels": [f"label {i}" for i in range(count)]})
        sentence = refused(mallory, "zero-shot-classification", "all-minilm-l6-v2", "x", labels, api_name="/run")
        assert ("at most 100,000" if count > 51 else "at most 50") in sentence, sentence
    assert "200" in refused(mallory, "text-classification", "m" * 5_000, "x", None, api_name="/run")


# ---- 5. quotas --------------------------------------------------------------------------------------------------


def test_one_visitor_gets_three_jobs_and_one_worker_at_a_time(space_app):
    greedy = Client(space_app.url, verbose=False)
    accepted, sentences = [], []
    burst = [greedy.submit(json.dumps({"name": f"burst-{i}", "vocab_size": 4000}), api_name="/train_tokenizer")
             for i in range(12)]  # fmt: skip
    for request in burst:  # twelve at once, as the attacker sent them
        try:
            accepted.append(request.result())
        except AppError as err:
            sentences.append(str(err))
    assert len(accepted) == 3 and len(sentences) == 9
    assert "the most one visitor may have at once (3)" in sentences[0]
    most_running = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        jobs = greedy.predict(api_name="/jobs")
        most_running = max(most_running, sum(j["status"] == "running" for j in jobs))
        if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs):
            break
        time.sleep(0.3)
    assert most_running == 1
    assert [j["status"] for j in greedy.predict(api_name="/jobs")] == ["succeeded"] * 3


def test_one_generation_at_a_time_per_visitor(space_app):
    greedy = Client(space_app.url, verbose=False)
    long = greedy.submit("smollm2-135m-instruct", "Tell a long story.", '{"max_new_tokens": 200}',
                         api_name="/generate")  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not long.outputs():
        time.sleep(0.2)
    sentence = refused(greedy, "smollm2-135m-instruct", "Hi", '{"max_new_tokens": 5}', api_name="/generate")
    assert "press Stop" in sentence
    other = Client(space_app.url, verbose=False)  # another visitor is served meanwhile
    assert other.predict("feature-extraction", "all-minilm-l6-v2", "hello", None, api_name="/run")
    long.cancel()


# ---- 6. no oracles, no server details ---------------------------------------------------------------------------


def test_error_sentences_do_not_tell_what_exists_on_the_server(mallory):
    pairs = [
        ("services/../../../etc/ssh", "services/../../../etc/no-such-folder"),
        ("/etc", "/no-such-folder"),
        ("tests/data", "tests/no-such-folder"),
    ]
    for real, missing in pairs:
        answers = [refused(mallory, "text-classification", m, "x", None, api_name="/run") for m in (real, missing)]
        assert answers[0].replace(real, "X") == answers[1].replace(missing, "X"), answers


def test_jobs_show_no_paths_commands_owner_ids_or_tracebacks(space_app, mallory, tmp_path):
    corrupt = tmp_path / "broken.zip"
    corrupt.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    job = mallory.predict("broken", [handle_file(str(corrupt))], api_name="/rag_ingest")
    wait_job(mallory, job, timeout=300)
    shown = everything_shown(mallory)
    assert '"command"' not in shown and "Traceback" not in shown
    for secret in (str(space_app.home), str(ROOT), "session:", "anon:", SPACE_TOKEN):
        assert secret not in shown, secret


# ---- 7. the Space's token ---------------------------------------------------------------------------------------


def test_the_space_token_is_nowhere_a_visitor_or_a_job_can_read(space_app):
    for path in space_app.home.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert SPACE_TOKEN.encode() not in path.read_bytes(), path


def test_the_app_still_serves_after_the_attacks(space_app):
    client = Client(space_app.url, verbose=False)
    assert client.predict("sentence-similarity", "all-minilm-l6-v2",
                          json.dumps({"source_sentence": "a cat", "sentences": ["a kitten"]}), None,
                          api_name="/run")  # fmt: skip
