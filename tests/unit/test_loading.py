"""Loading models: the right head, device and dtype, a cache that loads once, and refusals that explain."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from services.core.errors import CorruptWeights, NotAModel, TaskMismatch, UnsafeWeights
from services.models import loading


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=settings.model_memory_bytes)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


@pytest.mark.parametrize(
    ("name", "task", "class_name"),
    [
        ("bert-classifier", "sentiment-analysis", "BertForSequenceClassification"),
        ("bert-ner", "ner", "BertForTokenClassification"),
        ("bert-qa", "question-answering", "BertForQuestionAnswering"),
        ("bert-mlm", "fill-mask", "BertForMaskedLM"),
        ("bert-encoder", "feature-extraction", "BertModel"),
        ("gpt2", "text-generation", "GPT2LMHeadModel"),
        ("t5", "summarization", "T5ForConditionalGeneration"),
        ("t5", "translation", "T5ForConditionalGeneration"),
    ],
)
def test_loads_the_right_head_on_the_chosen_device(fresh_cache, tiny_models, name, task, class_name):
    from services.core.system import device_info

    loaded = loading.load(str(tiny_models[name]), task)
    assert type(loaded.model).__name__ == class_name
    expected = device_info()
    assert loaded.device == expected.device and loaded.dtype == expected.dtype_name
    assert next(loaded.model.parameters()).device.type == expected.device
    if expected.device == "cpu":
        assert expected.dtype_name == "float32"
    elif expected.device == "cuda":
        assert expected.dtype_name in ("bfloat16", "float16")
    assert not loaded.model.training
    assert loaded.nbytes > 0
    assert loaded.tokenizer("the movie")["input_ids"]


def test_a_model_that_cannot_do_the_task_says_what_it_can_do(fresh_cache, tiny_models):
    with pytest.raises(TaskMismatch, match=r"cannot do question-answering.*text-generation"):
        loading.load(str(tiny_models["gpt2"]), "question-answering")


def test_cached_fetch_returns_the_same_object(fresh_cache, tiny_models):
    first = loading.load(str(tiny_models["bert-classifier"]), "text-classification")
    again = loading.load(str(tiny_models["bert-classifier"]), "sentiment-analysis")
    assert again is first and fresh_cache.loads == 1


def test_ten_concurrent_requests_load_once(fresh_cache, tiny_models, monkeypatch):
    real = loading._load_uncached
    calls = []

    def slow_load(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)  # widen the window in which the other nine requests arrive
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "_load_uncached", slow_load)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(loading.load(str(tiny_models["gpt2"]), "text-generation")))
        for _ in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 10
    assert all(r is results[0] for r in results)


def test_failed_load_is_not_cached_and_can_be_retried(fresh_cache, tmp_path, tiny_models):
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_models["gpt2"] / "config.json").read_text())
    with pytest.raises(NotAModel, match="no weights"):
        loading.load(str(folder), "text-generation")
    shutil.rmtree(folder)
    shutil.copytree(tiny_models["gpt2"], folder)
    assert loading.load(str(folder), "text-generation").model is not None


def test_memory_budget_evicts_least_recently_used(monkeypatch, settings, tiny_models):
    cache = loading.ModelCache(budget_bytes=1)  # smaller than any model: only the newest stays
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    loading.load(str(tiny_models["gpt2"]), "text-generation")
    loading.load(str(tiny_models["bert-mlm"]), "fill-mask")
    assert [m["id"] for m in cache.snapshot()] == [str(tiny_models["bert-mlm"])]
    loading.load(str(tiny_models["gpt2"]), "text-generation")
    assert cache.loads == 3


def test_pickled_weights_are_refused_unless_allowed(fresh_cache, tmp_path, tiny_models):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["gpt2"], folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")  # an old-style pickled checkpoint
    weights.unlink()
    with pytest.raises(UnsafeWeights, match="pickled"):
        loading.load(str(folder), "text-generation")
    loaded = loading.load(str(folder), "text-generation", allow_pickle=True)
    assert type(loaded.model).__name__ == "GPT2LMHeadModel"


def test_corrupt_weights_are_explained(fresh_cache, tmp_path, tiny_models):
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_models["bert-classifier"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CorruptWeights, match="damaged"):
        loading.load(str(folder), "text-classification")


def test_truncated_weights_are_explained(fresh_cache, tmp_path, tiny_models):
    folder = tmp_path / "truncated"
    shutil.copytree(tiny_models["bert-classifier"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptWeights):
        loading.load(str(folder), "text-classification")


def test_device_choice_respects_the_setting(monkeypatch, settings):
    from services.core import system
    from services.core.config import get_settings

    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    get_settings.cache_clear()
    system.device_info.cache_clear()
    try:
        info = system.device_info()
        assert info.device == "cpu" and info.dtype_name == "float32" and "CPU" in info.name
    finally:
        system.device_info.cache_clear()


def test_one_visitors_consent_to_pickles_does_not_serve_another(fresh_cache, tmp_path, tiny_models):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled-shared"
    shutil.copytree(tiny_models["gpt2"], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert loading.load(str(folder), "text-generation", allow_pickle=True)
    with pytest.raises(UnsafeWeights):
        loading.load(str(folder), "text-generation")


def test_settle_waits_for_the_loads_in_progress():
    """Before the process exits, a load in a worker thread is let finish (a thread killed inside torch aborts)."""
    cache = loading.ModelCache(budget_bytes=2**30)
    started, release = threading.Event(), threading.Event()

    def slow_loader():
        started.set()
        release.wait(5)
        return type("Loaded", (), {"id": "slow", "nbytes": 1})()

    worker = threading.Thread(target=cache.get_or_load, args=(("slow",), slow_loader))
    worker.start()
    started.wait(5)
    assert cache.settle(timeout=0.05) is False, "a load is still in progress"
    threading.Timer(0.2, release.set).start()
    assert cache.settle(timeout=5) is True
    worker.join(5)
    assert cache.loads == 1
