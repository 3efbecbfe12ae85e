"""A LoRA adapter trained here is a model everywhere (issue 16): the folder `python -m services train` writes for a
chat job runs through `services.pipelines.run` (base + adapter), and merging it gives a full model that answers
like the adapter, not like the base."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.unit.test_lora_train import ROOT, chat_config


def test_a_trained_chat_adapter_runs_in_pipelines_and_merges(tiny_chat_model, tmp_path):
    out = tmp_path / "adapter"
    job = tmp_path / "job.yaml"
    config = chat_config(tiny_chat_model, out)
    config["training"]["learning_rate"] = 8e-3  # a few steps that move the adapter far enough to tell it apart
    job.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "services", "train", str(job)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    from services import pipelines

    messages = [{"role": "user", "content": "What day comes 2 days after Monday?"}]
    result = pipelines.run("text-generation", str(out), messages, max_new_tokens=4, do_sample=False)
    assert isinstance(result, list) and result[0]["generated_text"][-1]["role"] == "assistant"

    merged = tmp_path / "merged"
    merge = subprocess.run([sys.executable, "-m", "services", "lora", "merge", str(out), "--output", str(merged)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert merge.returncode == 0, merge.stderr[-2000:]
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
