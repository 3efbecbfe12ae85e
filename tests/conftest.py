"""Test set-up shared by every layer: offline, a private PLAYGROUND_HOME, tiny models, a job manager.

The environment is fixed before any service reads its settings, so no test touches the Hub or the user's
real playground folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="playground-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PLAYGROUND_HOME"] = str(_SESSION_HOME / "home")
os.environ.setdefault("PLAYGROUND_PACKS_DIR", str(Path(__file__).resolve().parent.parent / ".playground" / "packs"))
os.environ["PLAYGROUND_CANCEL_GRACE_S"] = "5"
os.environ.pop("SPACE_ID", None)
# The per-visitor quotas and the worker slots have their own tests (tests/unit/test_quotas.py, the Space-mode
# tests); elsewhere many jobs of one test owner run side by side, as they did before the quotas existed.
os.environ.setdefault("PLAYGROUND_MAX_JOBS_PER_VISITOR", "1000")
os.environ.setdefault("PLAYGROUND_JOB_SLOTS", "8")
os.environ.setdefault("PLAYGROUND_MAX_GENERATIONS_PER_VISITOR", "8")
os.environ.setdefault("PLAYGROUND_REQUESTS_PER_S", "1000")  # every test client calls from 127.0.0.1

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    from tests.tiny import build_tiny_models

    return build_tiny_models(_SESSION_HOME / "tiny-models")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Fresh settings with PLAYGROUND_HOME in this test's own folder."""
    from services.core.config import get_settings

    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def manager(settings):
    from services.jobs.manager import JobManager

    m = JobManager.from_settings()
    yield m
    m.shutdown(timeout=10)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_app():
    """The real app, launched once on a free loopback port for the API and browser layers; yields its URL."""
    import app as app_module
    from services.core.config import get_settings
    from services.jobs.manager import JobManager

    get_settings.cache_clear()
    manager = JobManager.from_settings()
    demo = app_module.build_app(manager)
    demo.queue(default_concurrency_limit=8)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs()
    )
    yield {"url": f"http://127.0.0.1:{port}/", "manager": manager}
    manager.shutdown(timeout=10)
    demo.close()
    from services.models.loading import model_cache

    model_cache().settle(timeout=120)  # a page load may have started one: let it end before the interpreter does


@pytest.fixture(scope="session")
def space_app(tmp_path_factory):
    """The app as a public Space runs it (tests/space.py): its own process, SPACE_ID and the Space's HF_TOKEN set,
    the local Hub emulator as the Hub, seeded with a repo whose code must never run."""
    from tests import space
    from tests.hub_emulator import DEFAULT_TOKENS, Emulator

    workdir = tmp_path_factory.mktemp("space")
    mallory = {"hf_write_mallory_token": {"user": "mallory", "orgs": [], "role": "write"}}
    emulator = Emulator(tokens={**DEFAULT_TOKENS, **mallory}).start()
    marker = workdir / "remote-code-ran.txt"
    space.seed_attacker_repos(emulator.url, marker, workdir)
    app, proc = space.start(workdir, emulator.url, marker)
    yield app
    space.stop(proc)
    emulator.stop()


@pytest.fixture(scope="session")
def tiny_chat_model() -> Path:
    """A tiny random Llama with a byte-level BPE tokenizer and SmolLM2's ChatML template (`<|im_end|>` is EOS)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tests.tiny import CORPUS

    folder = _SESSION_HOME / "tiny-models" / "chat-llama"
    if (folder / "config.json").is_file():
        return folder
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(
        [*CORPUS, 'user assistant system {"name": "city"} 0123456789'], vocab_size=500, special_tokens=specials
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    tokenizer.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
