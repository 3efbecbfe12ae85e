"""The Inside a model tab's API through gradio_client: /inspect_model, /attention, /logit_lens, /build_estimate and
/build_model on the packaged MiniLM and SmolLM2, the bad inputs (an empty text, a text far over the cap, a config
change that cannot work), and the owner boundary (a model one session built is not found by another)."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.api


def test_the_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/inspect_model", "/attention", "/logit_lens", "/build_estimate", "/build_model"} <= names


def test_inspect_counts_every_module_of_minilm(client):
    info = client.predict("all-minilm-l6-v2", api_name="/inspect_model")
    assert info["model"] == "all-minilm-l6-v2" and info["modules"][0]["name"] == ""
    assert info["total_parameters"] == info["modules"][0]["parameters"] > 20_000_000
    layers = [m for m in info["modules"] if m["name"].count(".") == 2 and m["name"].startswith("encoder.layer.")]
    assert len(layers) == 6 and len({m["parameters"] for m in layers}) == 1  # six identical blocks
    assert {"fp32", "bf16", "int8", "4-bit"} == set(info["memory"])


def test_attention_rows_sum_to_one_and_a_causal_model_never_looks_ahead(client):
    out = client.predict("smollm2-135m-instruct", "The cat sat on the mat", api_name="/attention")
    attentions, n = out["attentions"], len(out["tokens"])
    assert len(attentions) == 30 and len(attentions[0]) == 9 and len(attentions[0][0]) == n
    for row_index, row in enumerate(attentions[7][3]):
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
        assert all(value == 0.0 for value in row[row_index + 1 :])


def test_the_logit_lens_ends_on_the_models_own_guess(client):
    out = client.predict("smollm2-135m-instruct", "The capital of France is", 3, api_name="/logit_lens")
    row = out["lens"]["positions"][-1]
    assert len(row["layers"]) == 31  # the embeddings, then each of the 30 blocks
    assert row["layers"][-1]["top"][0]["id"] == row["prediction"]["id"]
    assert len(row["layers"][0]["top"]) == 3


def test_bad_inputs_get_a_sentence(client):
    with pytest.raises(AppError, match="Type a text first"):
        client.predict("all-minilm-l6-v2", "   ", api_name="/attention")
    long = client.predict("smollm2-135m-instruct", "word " * 10_000, 5, api_name="/logit_lens")
    assert any("Only the first" in notice for notice in long["notices"]) and len(long["tokens"]) <= 256
    with pytest.raises(AppError, match="576"):
        client.predict("smollm2-135m-instruct", {"num_attention_heads": 7}, None, api_name="/build_estimate")


def test_a_model_built_by_one_session_is_not_found_by_another(client, other_client):
    estimate = client.predict("smollm2-135m-instruct", {"num_hidden_layers": 2}, None, api_name="/build_estimate")
    assert estimate["total_parameters"] < estimate["parameters_before"]
    made = client.predict("smollm2-135m-instruct", {"num_hidden_layers": 2}, "api-tiny", None, api_name="/build_model")
    assert made["id"] == "trained:api-tiny" and made["finetune_config"]["task"] == "causal-lm"
    mine = client.predict("trained:api-tiny", api_name="/inspect_model")
    assert mine["total_parameters"] == estimate["total_parameters"]
    with pytest.raises(AppError, match="no trained model called 'api-tiny'"):
        other_client.predict("trained:api-tiny", api_name="/inspect_model")
