"""What each Hugging Face job of a run does: ``python -m services hf-jobs-node --repo R --run ID --nodes N --rank K``.

1. Download ``runs/<ID>/`` (job.yaml and any uploaded data) from the user's private dataset repo R, with the
   job's ``HF_TOKEN`` secret.
2. Rewrite the config for this container: the output in a folder of its own, the data file where it was downloaded.
3. Run what ``python -m services train job.yaml`` runs (the same training as a local run), in this process for one
   node, under ``torchrun`` for several: one process per node, the rendezvous on node 0, which claims the alias
   ``node-0`` in the run's network group (``HF_NETWORK_GROUP_PREFIX`` + alias). Data parallel over NCCL on GPUs,
   gloo on CPUs. The training's JSON-lines events go to the job's log, which the app follows.
4. Node 0 pushes the result (model or adapter, card, metrics) to ``push_to_hub.repo_id`` and exits non-zero when
   the push failed, so a run only succeeds with its result on the Hub.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from services.jobs.events import EventWriter
from services.training.config import TrainConfig

NODE_ALIAS = "node-0"
DEFAULT_PORT = 29500


def master_address() -> str:
    """Node 0's address in the run's network group. Where the alias does not resolve (the local emulator runs every
    member on one machine), the group's hostname, which resolves to the members."""
    alias = f"{os.environ.get('HF_NETWORK_GROUP_PREFIX', '')}{NODE_ALIAS}"
    try:
        socket.getaddrinfo(alias, None)
        return alias
    except OSError:
        return os.environ.get("HF_NETWORK_GROUP_HOSTNAME") or "localhost"


def local_config(folder: Path, work: Path) -> tuple[TrainConfig, dict | None]:
    """The run's config for this container, and its push target (pushed here, after training)."""
    data = TrainConfig.from_yaml(folder / "job.yaml").to_dict()
    target = data.pop("push_to_hub", None)
    data["output_dir"] = str(work / "output")
    source = str(data["dataset"]["source"])
    if source.startswith("data/"):  # an uploaded file travelled with the config
        data["dataset"]["source"] = str(folder / source)
    return TrainConfig.from_dict(data), target


def train_command(config_path: Path, nodes: int, rank: int) -> list[str]:
    train = ["-m", "services", "train", str(config_path)]
    if nodes <= 1:
        return [sys.executable, *train]
    port = os.environ.get("PLAYGROUND_RDZV_PORT") or str(DEFAULT_PORT)
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nodes), "--nproc-per-node", "1",
            "--node-rank", str(rank), "--master-addr", master_address(), "--master-port", port, *train]  # fmt: skip


def main(repo: str, run_id: str, nodes: int, rank: int) -> int:
    from services.hub.jobs import download_run
    from services.hub.push import push

    os.environ["PLAYGROUND_JOB_ID"] = run_id  # events as JSON lines: the app reads them from the job's log
    events = EventWriter()
    events.enabled = rank == 0  # one node speaks for the run, as the main process does in a local run
    token = os.environ.get("HF_TOKEN", "")
    work = Path(tempfile.mkdtemp(prefix="playground-run-"))
    folder = download_run(token, repo, run_id, work / "run")
    config, target = local_config(folder, work)
    path = work / "job.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    if rank == 0:
        events.log(f"Node 1 of {nodes}: training {config.model} on {config.dataset.source.split('/')[-1]}")
    if nodes <= 1:  # one node: the training in this process (a second interpreter would only add its start-up)
        from services.core.errors import PlaygroundError
        from services.jobs.events import install_cancel_handler
        from services.training.train import train

        install_cancel_handler()
        try:
            train(config)
        except PlaygroundError as err:
            events.error(str(err))
            return 2
    else:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        code = subprocess.call(train_command(path, nodes, rank), env=env, stdin=subprocess.DEVNULL)
        if code != 0:
            return code
    if rank != 0 or not target:
        return 0
    events.progress(0.99, f"Pushing the result to {target['repo_id']}")
    from services.training.jobs import refresh_model_card

    if not (Path(config.output_dir) / "adapter_config.json").is_file():  # an adapter's card names no repo
        refresh_model_card(config.output_dir, target["repo_id"])  # the card's snippet loads from the new repo
    try:
        pushed = push(
            Path(config.output_dir), target["repo_id"], private=bool(target.get("private", True)), token=token,
            message=target.get("message") or f"Trained {config.model} for {config.task} on Hugging Face Jobs",
        )  # fmt: skip
    except Exception as err:
        events.error(f"The training finished but the push to {target['repo_id']} failed: {err}")
        return 3
    events.result({"push": {"repo_id": target["repo_id"], "url": pushed.get("url"), "commit": pushed.get("commit")}})
    events.progress(1.0, "Done")
    return 0
