"""The Deploy tab's API (`/deploy_info`, `/deploy_bundle`) through gradio_client, and the bundle CLI."""

from __future__ import annotations

import json
import zipfile

import httpx
import pytest
from gradio_client.exceptions import AppError

from services.serve.auth import owner_of_key


def test_deploy_info_gives_each_session_its_own_working_key(client, other_client, live_app):
    mine = client.predict("smollm2-135m-instruct", api_name="/deploy_info")
    theirs = other_client.predict("smollm2-135m-instruct", api_name="/deploy_info")
    assert mine["kind"] == "chat" and mine["endpoint"].endswith("/v1/chat/completions")
    assert mine["key"] != theirs["key"] and owner_of_key(mine["key"]) != owner_of_key(theirs["key"])
    assert "PLAYGROUND_API_KEY" in mine["snippets"]["python"] and mine["key"] not in json.dumps(mine["snippets"])
    base = live_app["url"].rstrip("/")
    listed = httpx.get(f"{base}/v1/models", headers={"authorization": f"Bearer {mine['key']}"}).json()
    assert "smollm2-135m-instruct" in [m["id"] for m in listed["data"]]
    embeddings = client.predict("all-minilm-l6-v2", api_name="/deploy_info")
    assert embeddings["kind"] == "embeddings" and embeddings["endpoint"].endswith("/v1/embeddings")


def test_a_model_the_api_does_not_serve_is_refused_in_a_sentence(client):
    with pytest.raises(AppError, match="Pipelines tab"):
        client.predict("minilm-ner", api_name="/deploy_info")


def test_deploy_bundle_is_a_zip_with_the_server(client):
    path = client.predict("all-minilm-l6-v2", api_name="/deploy_bundle")
    names = zipfile.ZipFile(path).namelist()
    for expected in ("server.py", "requirements.txt", "Dockerfile", "README.md", "bundle.json"):
        assert any(name.endswith(expected) for name in names), names
    assert any("model/" in name and name.endswith(".safetensors") for name in names)


def test_the_bundle_cli(tmp_path):
    from services.__main__ import main

    assert main(["bundle", "all-minilm-l6-v2", "--output-dir", str(tmp_path / "server"), "--zip"]) == 0
    assert (tmp_path / "server" / "server.py").is_file() and (tmp_path / "server.zip").is_file()


def test_an_onnx_export_job_reports_parity_and_speed(client):
    from tabs.deploy.export_panel import report_html
    from tests.api.conftest import wait_job

    job = wait_job(client, client.predict("minilm-sentiment", api_name="/deploy_export_onnx"), timeout=300)
    assert job["status"] == "succeeded", job
    report = job["result"]
    assert (
        report["parity"]["onnx_fp32"]["max_abs_diff"] < 1e-3 and report["parity"]["onnx_fp32"]["label_agreement"] == 1
    )
    assert 0 <= report["parity"]["onnx_int8"]["label_agreement"] <= 1
    assert report["size_mb"]["onnx_int8"] < report["size_mb"]["onnx_fp32"]
    assert report["source"] == "minilm-sentiment"  # the model's id, never a server path
    shown = report_html(report)
    assert "ONNX int8" in shown and "PyTorch float32" in shown and "ms" in shown
    assert "trained:minilm-sentiment-onnx" in shown  # one of the visitor's models now, run by ONNX Runtime
    listed = {m["id"] for m in client.predict("text-classification", api_name="/models")}
    assert "trained:minilm-sentiment-onnx" in listed
    for model in ("minilm-sentiment", "trained:minilm-sentiment-onnx"):
        answer = client.predict("text-classification", model, "I loved this film, it was wonderful.", None,
                                api_name="/run")  # fmt: skip
        assert answer[0]["label"] == "positive", (model, answer)


def test_an_onnx_export_of_a_chat_model_is_refused_at_once(client):
    with pytest.raises(AppError, match=r"encoder models.*smollm2-135m-instruct-fast-cpu"):
        client.predict("smollm2-135m-instruct", api_name="/deploy_export_onnx")
