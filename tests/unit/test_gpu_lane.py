"""The GPU lane (services.core.gpu) that the tabs' model runs and the REST API's share on a CUDA device: runs on a
CPU hold nothing, runs on the GPU wait for a free place, a run nested in another holds one place, and a pipeline run
of a model on the GPU waits its turn (a CPU model labelled as on "cuda" stands in for one here)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from services.core import gpu


@pytest.fixture
def one_place(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_GPU_INFERENCE", "1")
    gpu._places.cache_clear()
    yield
    gpu._places.cache_clear()


def _in_thread(fn) -> threading.Event:
    """Run `fn` in a thread of its own; the event is set when it has returned."""
    done = threading.Event()

    def run():
        fn()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_a_gpu_run_waits_for_the_place_and_a_cpu_run_never_does(one_place):
    with gpu.lane("cuda:0"):
        got_in = _in_thread(lambda: gpu.lane("cuda").__enter__())
        cpu_done = _in_thread(lambda: gpu.lane("cpu").__enter__())
        assert cpu_done.wait(5)  # the CPU holds no place
        time.sleep(0.3)
        assert not got_in.is_set()  # the second GPU run waits
    assert got_in.wait(5)  # and goes once the first is done


def test_a_run_nested_in_another_holds_one_place(one_place):
    with gpu.lane("cuda"), gpu.lane("cuda"), gpu.lane("cpu"), gpu.lane("cuda"):
        pass
    with gpu.lane("cuda"):  # every place was given back
        pass


def test_a_pipeline_run_on_the_gpu_waits_its_turn(one_place, tiny_models):
    from services.models import loading
    from services.pipelines import run_loaded

    loaded = dataclasses.replace(loading.load(str(tiny_models["bert-classifier"]), "text-classification"),
                                 device="cuda")  # fmt: skip
    results = []
    with gpu.lane("cuda"):  # another visitor's run (or an API client's) holds the only place
        finished = _in_thread(lambda: results.append(run_loaded(loaded, "text-classification", "good")))
        time.sleep(0.5)
        assert not finished.is_set()
    assert finished.wait(30) and results[0][0]["label"]
