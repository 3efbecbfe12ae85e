"""Inside a model, one forward pass (services.inside.forward): the attention maps equal transformers' own with eager
attention, rows sum to 1 and causal models never look ahead; the logit lens ends on the model's own prediction; a
model loaded with sdpa is switched to eager for the pass and left as it was; long texts are cut with a sentence,
empty ones refused; and the "Copy as code" scripts run."""

from __future__ import annotations

import contextlib
import io
import threading
import time

import pytest

from services.core.errors import PlaygroundError
from services.inside import forward, heads, snippets
from services.models import loading, packs

TEXT = "the movie was very good and i love it"


def _reference(folder, cls_name: str):
    import transformers
    from transformers import AutoTokenizer

    model = getattr(transformers, cls_name).from_pretrained(folder, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _direct(model, tokenizer, text: str):
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return ids, model(input_ids=ids, output_attentions=True, output_hidden_states=True)


@pytest.mark.parametrize(
    ("fixture", "name", "cls_name"),
    [
        ("tiny_models", "gpt2", "AutoModelForCausalLM"),
        ("tiny_chat_model", None, "AutoModelForCausalLM"),
        ("tiny_models", "bert-mlm", "AutoModelForMaskedLM"),
    ],
)
def test_attention_equals_a_direct_eager_call(settings, request, fixture, name, cls_name):
    import torch

    folder = request.getfixturevalue(fixture)
    folder = folder[name] if name else folder
    views = forward.forward_views(str(folder), TEXT, precise=True)
    model, tokenizer = _reference(folder, cls_name)
    ids, out = _direct(model, tokenizer, TEXT)
    assert views["ids"] == ids[0].tolist()
    got = torch.tensor(views["attentions"])
    expected = torch.stack([a[0] for a in out.attentions])
    assert (
        got.shape
        == expected.shape
        == (model.config.num_hidden_layers, views["heads_per_layer"], len(ids[0]), len(ids[0]))
    )
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got.sum(-1), torch.ones(got.shape[:-1]), atol=1e-5), "each row is a distribution"
    upper = torch.triu(torch.ones(got.shape[-2:], dtype=torch.bool), diagonal=1)
    if cls_name == "AutoModelForCausalLM":
        assert views["causal"] and got[..., upper].abs().max() == 0, "a causal model never looks ahead"
    else:
        assert not views["causal"] and got[..., upper].abs().max() > 0.01, "BERT reads both ways"
    assert len(views["head_summary"]["heads"]) == got.shape[0] * got.shape[1]
    assert len(views["updates"]) == got.shape[0]


def test_the_logit_lens_ends_on_the_models_own_prediction(settings, tiny_chat_model):
    import torch

    lens = forward.logit_lens(str(tiny_chat_model), TEXT, top_k=3)
    model, tokenizer = _reference(tiny_chat_model, "AutoModelForCausalLM")
    ids, out = _direct(model, tokenizer, TEXT)
    (position,) = lens["lens"]["positions"]
    assert position["position"] == len(ids[0]) - 1 and lens["lens"]["kind"] == "next-token"
    rows = position["layers"]
    assert [row["layer"] for row in rows] == list(range(model.config.num_hidden_layers + 1))
    own = int(out.logits[0, -1].argmax())
    assert rows[-1]["top"][0]["id"] == own == position["prediction"]["id"]
    assert rows[-1]["top"][0]["probability"] == pytest.approx(float(out.logits[0, -1].softmax(-1).max()), abs=1e-5)
    with torch.no_grad():  # layer l: the final norm, then lm_head, on the hidden state after l blocks
        for row, hidden in zip(rows[:-1], out.hidden_states[:-1], strict=True):
            probs = model.lm_head(model.model.norm(hidden[0, -1])).softmax(-1)
            assert [t["id"] for t in row["top"]] == probs.topk(3).indices.tolist()
            assert row["final_token_probability"] == pytest.approx(float(probs[own]), abs=1e-5)
    assert set(forward.attention(str(tiny_chat_model), TEXT)) == {"tokens", "attentions"}


def test_the_fill_mask_lens_reads_the_mask(settings, tiny_models):
    views = forward.forward_views(str(tiny_models["bert-mlm"]), "the movie was [MASK] good", precise=True, top_k=4)
    model, tokenizer = _reference(tiny_models["bert-mlm"], "AutoModelForMaskedLM")
    ids, out = _direct(model, tokenizer, "the movie was [MASK] good")
    (position,) = views["lens"]["positions"]
    assert position["position"] == ids[0].tolist().index(tokenizer.mask_token_id)
    assert position["prediction"]["id"] == int(out.logits[0, position["position"]].argmax())
    assert position["layers"][0]["label"] == "embeddings" and position["layers"][1]["label"] == "layer 1"
    no_mask = forward.forward_views(str(tiny_models["bert-mlm"]), TEXT)
    special = set(tokenizer.all_special_ids)
    assert [p["position"] for p in no_mask["lens"]["positions"]] == [
        i for i, token in enumerate(no_mask["ids"]) if token not in special
    ], "without a mask, every word position"


def test_layer_updates_are_the_change_of_the_hidden_states(settings, tiny_models):
    views = forward.forward_views(str(tiny_models["bert-mlm"]), TEXT, precise=True)
    _, out = _direct(*_reference(tiny_models["bert-mlm"], "AutoModelForMaskedLM"), TEXT)
    for row, before, after in zip(views["updates"], out.hidden_states[:-1], out.hidden_states[1:], strict=True):
        change = (after[0] - before[0]).norm(dim=-1)
        assert row["per_token"] == pytest.approx(change.tolist(), abs=1e-4)
        assert row["mean_norm"] == pytest.approx(float(change.mean()), abs=1e-4)


def test_sdpa_is_switched_to_eager_and_back(settings, tiny_chat_model):
    loaded = loading.load(str(tiny_chat_model), "text-generation")
    model = loaded.model
    assert model.config._attn_implementation == "sdpa", "the shared copy loads with the fused kernel"
    seen = {}
    original = model.forward

    def spy(*args, **kwargs):  # what the model runs with during the pass, and whether the busy lock is held
        seen["impl"] = model.config._attn_implementation
        seen["locked"] = not _free(loaded.busy)
        return original(*args, **kwargs)

    model.forward = spy
    try:
        views = forward.forward_views(str(tiny_chat_model), TEXT)
    finally:
        del model.forward
    assert seen == {"impl": "eager", "locked": True}
    assert any("eager" in notice for notice in views["notices"])
    assert model.config._attn_implementation == "sdpa"
    assert all(getattr(m, "config", model.config)._attn_implementation == "sdpa" for m in model.modules())


def _free(lock) -> bool:
    """Whether another thread could take `lock` now."""
    result = []
    thread = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.01) and (lock.release() or True)))
    thread.start()
    thread.join()
    return result == [True]


def test_a_long_text_is_cut_with_a_sentence(settings, tiny_models, tiny_chat_model):
    text = " ".join(["the movie was good"] * 2_500)  # 10,000 words
    started = time.monotonic()
    views = forward.forward_views(str(tiny_chat_model), text)
    assert time.monotonic() - started < 10
    assert len(views["tokens"]) == forward.MAX_VIEW_TOKENS < views["total_tokens"]
    assert views["notices"][0].startswith(f"Only the first {forward.MAX_VIEW_TOKENS:,} of {views['total_tokens']:,}")
    small = forward.forward_views(str(tiny_models["gpt2"]), text)  # GPT-2 here reads at most 128 positions
    assert len(small["tokens"]) == 128 and "at most 128" in small["notices"][0]
    assert len(forward.forward_views(str(tiny_models["gpt2"]), text, max_tokens=10)["attentions"][0][0]) == 10


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_text_is_refused_with_a_sentence(settings, tiny_models, text):
    with pytest.raises(PlaygroundError, match="Type a text first"):
        forward.forward_views(str(tiny_models["gpt2"]), text)


def test_a_one_token_text_works(settings, tiny_models):
    views = forward.forward_views(str(tiny_models["gpt2"]), "the")
    assert len(views["tokens"]) == 1 and views["attentions"][0][0] == [[1.0]]
    assert views["lens"]["positions"][0]["position"] == 0 and len(views["updates"]) == 2


def test_rounded_payload_is_the_precise_one_rounded(settings, tiny_models):
    import torch

    rounded = forward.forward_views(str(tiny_models["gpt2"]), TEXT)
    precise = forward.forward_views(str(tiny_models["gpt2"]), TEXT, precise=True)
    assert torch.allclose(torch.tensor(rounded["attentions"]), torch.tensor(precise["attentions"]), atol=5.1e-5)
    assert all(len(repr(x)) <= 6 for x in rounded["attentions"][0][0][3]), "0.1234, not 0.12340000123"


def test_head_kinds_are_recognised_on_made_up_patterns():
    import torch

    n = 6
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    sink = torch.zeros(n, n)
    sink[:, 0] = 1
    even = torch.tril(torch.ones(n, n))
    even = even / even.sum(-1, keepdim=True)
    summary = heads.summarize(torch.stack([previous, sink, even])[None], list(range(n)), causal=True, digits=None)
    assert [row["label"] for row in summary["heads"]] == [
        "previous-token head",
        "first-token (sink) head",
        "broad head",
    ]
    assert summary["heads"][0]["previous"] == 1.0 and summary["heads"][1]["first"] == 1.0


@pytest.mark.slow
def test_smollm2_views_and_its_own_next_token(settings):
    import torch

    if not packs.PACKS["smollm2-135m-instruct"].installed:
        pytest.skip("the package of smollm2-135m-instruct is not installed")
    text = "The capital of France is Paris. The capital of Italy is"
    views = forward.forward_views("smollm2-135m-instruct", text)
    loaded = loading.load("smollm2-135m-instruct", "text-generation")
    with torch.no_grad():
        logits = loaded.model(input_ids=torch.tensor([views["ids"]])).logits[0, -1]
    assert views["lens"]["positions"][0]["prediction"]["id"] == int(logits.argmax())
    assert loaded.model.config._attn_implementation == "sdpa"
    got = torch.tensor(views["attentions"])
    assert got.shape[:2] == (loaded.model.config.num_hidden_layers, loaded.model.config.num_attention_heads)
    assert torch.allclose(got.sum(-1), torch.ones(got.shape[:-1]), atol=1e-3)
    assert views["causal"] and sum(views["head_summary"]["counts"].values()) == got.shape[0] * got.shape[1]


@pytest.mark.parametrize("name", ["gpt2", "bert-mlm", "t5"])
def test_copy_as_code_runs_and_embeds_the_text_safely(settings, tiny_models, tmp_path, monkeypatch, name):
    import torch

    monkeypatch.chdir(tmp_path)  # the build script saves "my-model" where it runs
    text = "the movie was [MASK] good'\"\\ \n)"
    scripts = snippets.snippets(str(tiny_models[name]), text, changes={"num_hidden_layers": 1})
    assert set(scripts) == {"anatomy", "attention", "heads", "updates", "logit_lens", "build"}
    for view, code in scripts.items():
        space: dict = {}
        # The scripts turn gradients off for good (torch.set_grad_enabled(False)): the context restores them for the
        # tests that train after this one in the same process.
        with contextlib.redirect_stdout(io.StringIO()), torch.enable_grad():
            exec(compile(code, view, "exec"), space)
        assert torch.is_grad_enabled()
        if "text" in space:
            assert space["text"] == text
    assert (tmp_path / "my-model" / "config.json").is_file()
    attribute = {"gpt2": "n_layer", "bert-mlm": "num_hidden_layers", "t5": "num_layers"}[name]
    assert f"config.{attribute} = 1\n" in scripts["build"], "the change, under the config's own name"
