"""The app as a public Space runs it, for the attack tests: `python app.py` in its own process with SPACE_ID set,
the Space's own HF_TOKEN in its environment, and the local Hub emulator as the (reachable) Hub.

The emulator is seeded with what an attacker would publish: a model and a tokenizer whose `auto_map` points at a
`configuration_evil.py` that, if it ever ran, would copy the app's environment (the Space's token) into a marker
file. The tests drive the app with real `gradio_client` visitors and raw HTTP, and read the marker, the app's
storage and its process (memory) from outside.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPACE_TOKEN = "hf_spaceOwnSecretToken0123456789"  # the Space's own token: no visitor may ever see or use it
EVIL_MODEL = "mallory/remote-code-model"
# Caps the Space-mode app runs with (the defaults, written out so the tests can count on them).
SPACE_LIMITS = {
    "PLAYGROUND_MAX_JOBS_PER_VISITOR": "3",
    "PLAYGROUND_JOB_SLOTS": "1",
    "PLAYGROUND_MAX_GENERATIONS_PER_VISITOR": "1",
    "PLAYGROUND_MAX_INGEST_TEXT_MB": "1",  # small, so that a zip bomb's first megabyte is quick to index
    # All the test's visitors call from 127.0.0.1, one address: the rate per address has its own test.
    "PLAYGROUND_REQUESTS_PER_S": "200",
}

_EVIL_CODE = """
import os
from pathlib import Path

try:
    secrets = Path(f"/proc/{{os.getppid()}}/environ").read_bytes().decode(errors="replace")
except OSError as err:
    secrets = f"unreadable: {{err}}"
Path({marker!r}).write_text("remote code ran\\n" + secrets)

from transformers import PretrainedConfig


class EvilConfig(PretrainedConfig):
    model_type = "evilnet"
"""


@dataclass
class SpaceApp:
    url: str
    pid: int
    home: Path
    hub_url: str
    marker: Path
    log: Path

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_attacker_repos(hub_url: str, marker: Path, workdir: Path) -> None:
    """Publish a model repo whose config and tokenizer need their own Python code (`auto_map`)."""
    from huggingface_hub import HfApi

    folder = workdir / "evil-repo"
    folder.mkdir(parents=True, exist_ok=True)
    auto_map = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "configuration_evil.EvilConfig",
                "AutoModelForSequenceClassification": "configuration_evil.EvilConfig",
                "AutoModelForCausalLM": "configuration_evil.EvilConfig"}  # fmt: skip
    config = {"model_type": "evilnet", "architectures": ["EvilForSequenceClassification"], "auto_map": auto_map}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["configuration_evil.EvilConfig", None]}})
    )
    (folder / "configuration_evil.py").write_text(_EVIL_CODE.format(marker=str(marker)))
    import huggingface_hub.constants as hf_constants

    offline, hf_constants.HF_HUB_OFFLINE = hf_constants.HF_HUB_OFFLINE, False  # the tests run offline otherwise
    try:
        api = HfApi(endpoint=hub_url, token="hf_write_mallory_token")
        api.create_repo("remote-code-model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=EVIL_MODEL, commit_message="helpful model")
    finally:
        hf_constants.HF_HUB_OFFLINE = offline


def start(
    workdir: Path, hub_url: str, marker: Path, extra_env: dict[str, str] | None = None
) -> tuple[SpaceApp, subprocess.Popen]:
    """Start `python app.py` in Space mode and wait until it serves its page."""
    home = workdir / "home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_MAX_") and k != "HF_HUB_OFFLINE"}
    for name in ("PLAYGROUND_JOB_SLOTS", "PLAYGROUND_REQUESTS_PER_S"):
        env.pop(name, None)
    env.update(
        SPACE_ID="hf-playground/safety-test",
        HF_TOKEN=SPACE_TOKEN,
        HF_ENDPOINT=hub_url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(workdir / "hf-home"),
        PLAYGROUND_HOME=str(home),
        GRADIO_TEMP_DIR=str(workdir / "gradio"),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        **SPACE_LIMITS,
        **(extra_env or {}),
    )
    log = workdir / "app.log"
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Space-mode app exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return SpaceApp(url, proc.pid, home, hub_url, marker, log), proc
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"the Space-mode app did not start in time:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
