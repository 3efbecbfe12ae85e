"""Tokenizers loaded from several threads at once in a fresh process (a page load opens a few): transformers'
lazy top-level module fails such a first import ("cannot import name 'AutoTokenizer'"); the loader must not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import threading
from services.tokenizers.loading import load_tokenizer
errors = []
def load(name):
    try:
        load_tokenizer(name)
    except Exception as err:
        errors.append(repr(err))
names = ["all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo", "all-minilm-l6-v2"]
threads = [threading.Thread(target=load, args=(n,)) for n in names]
for t in threads: t.start()
for t in threads: t.join()
print("ERRORS", errors)
"""


def test_first_loads_from_several_threads_at_once():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert "ERRORS []" in out.stdout, out.stdout + out.stderr[-2000:]
