"""`python -m services inspect | attention | logit-lens`: the JSON contract on stdout, a sentence and status 2 for a
mistake. Two commands run as real subprocesses (slow: each imports torch); the rest through `main()` in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.__main__ import main
from services.inside import anatomy, forward

ROOT = Path(__file__).resolve().parents[2]
TEXT = "the movie was very good"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PLAYGROUND_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "services", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


def _flat(attentions: list) -> list[float]:
    return [x for layer in attentions for head in layer for row in head for x in row]


def test_attention_prints_tokens_and_full_precision_attentions(settings, tiny_models, tmp_path):
    done = _cli(tmp_path / "home", "attention", str(tiny_models["gpt2"]), "--text", TEXT)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert set(printed) == {"tokens", "attentions"}
    expected = forward.attention(str(tiny_models["gpt2"]), TEXT)
    assert printed["tokens"] == expected["tokens"]
    layers = printed["attentions"]
    assert len(layers) == 2 and len(layers[0][0]) == len(printed["tokens"]) == len(layers[0][0][0])
    flat = _flat(layers)
    assert flat == pytest.approx(_flat(expected["attentions"]), abs=1e-6)
    assert any(len(repr(x)) > 8 for x in flat if x), "full precision, not rounded to 4 decimals"
    assert "eager" in done.stderr, "the notice goes to stderr; stdout stays the contract"


def test_inspect_prints_the_modules(settings, tiny_models, tmp_path):
    done = _cli(tmp_path / "home", "inspect", str(tiny_models["bert-encoder"]))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert set(printed) >= {"model", "total_parameters", "modules", "config"}
    expected = anatomy.inspect_model(str(tiny_models["bert-encoder"]))
    assert printed["modules"] == expected["modules"]
    assert printed["total_parameters"] == expected["total_parameters"]


def test_logit_lens_and_a_mistake_in_process(settings, tiny_chat_model, capsys):
    assert main(["logit-lens", str(tiny_chat_model), "--text", TEXT, "--top-k", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = forward.logit_lens(str(tiny_chat_model), TEXT, top_k=3)
    assert printed["lens"] == expected["lens"] and len(printed["lens"]["positions"][0]["layers"][0]["top"]) == 3
    assert main(["attention", str(tiny_chat_model), "--text", "  "]) == 2
    error = capsys.readouterr().err
    assert "Type a text first" in error and "Traceback" not in error
