"""Runs on Hugging Face Jobs as jobs of the app (the Fine-tune and LoRA tabs' "Run on: Hugging Face Jobs").

`start` checks the config as a local run is checked (the visitor's policy, their own data files, a name), launches
the run (`services.training.hf_jobs.launch`) and follows it in an app job of kind ``remote-train``: node 0's events
become the job's progress, metrics and log, so the tabs' curves, progress and ETA read it like a local training.
Cancel stops every node. When the run succeeds, its pushed model is downloaded into the owner's own folder and
listed in the owner's catalog under its Hub id (`services.models.remote_results`), with its report.

The record keeps the Hugging Face job ids and how many log lines were applied (``remote.json`` in the job's folder),
never the token: after an app restart, `reattach` with the visitor's token follows the run again from that line.
"""

from __future__ import annotations

import json
import logging

from services.core.errors import PlaygroundError
from services.core.owners import safe_name
from services.core.redact import scrub
from services.core.safety import check_remote_code
from services.jobs.context import JobCancelled, JobDetached
from services.training.config import TrainConfig
from services.training.hf_jobs import KIND, MAX_NODES, Detached, Run, RunCancelled, follow, launch, read_report
from services.training.jobs import check_source
from services.training.policy import check_for_visitors

__all__ = ["KIND", "MAX_NODES", "hardware_choices", "keep_following", "outputs", "reattach", "start"]
logger = logging.getLogger(__name__)
SEEN_FILE = "remote.json"


def hardware_choices(token: str | None) -> list[tuple[str, str]]:
    """(label with the price per hour, flavor) for a dropdown, cheapest first."""
    from services.hub.jobs import hardware

    return [(h.label, h.name) for h in hardware(_token(token))]


def start(manager, owner: str, config: TrainConfig | dict, name: str, token: str | None, flavor: str,
          nodes: int = 1, timeout: str | int | None = None, push_to: str | None = None) -> str:  # fmt: skip
    """Launch a training on Hugging Face Jobs and follow it as a job of the app; returns the app job's id.
    `push_to`: the repo for the result when the config names none (the tabs' field; empty there: the user's own
    namespace and the model's name, private)."""
    config = TrainConfig.from_dict(dict(config)) if isinstance(config, dict) else config
    check_remote_code(config.trust_remote_code)
    check_for_visitors(config)
    if safe_name(name or "", "") != (name or "").strip() or not (name or "").strip():
        raise PlaygroundError("Name the model with letters, digits, '-', '_' or '.' (for example sentiment-minilm).")
    check_source(config.dataset.source, owner)
    token = _token(token)
    if push_to or not config.push_to_hub:
        from services.hub.jobs import namespace

        data = config.to_dict()
        data["push_to_hub"] = {"repo_id": push_to or f"{namespace(token)}/{name.strip()}", "private": True}
        config = TrainConfig.from_dict(data)
    manager.check_room(owner)  # a visitor at the job limit is told before anything starts on Hugging Face
    run = launch(config, token, flavor, int(nodes), timeout, owner)
    title = f"Train {name} on Hugging Face Jobs ({flavor}{f' x {nodes} nodes' if int(nodes) > 1 else ''})"
    info = {"name": name, "task": config.task, "model": config.model, "remote": run.to_dict(),
            "lora": config.lora is not None}  # fmt: skip
    return manager.submit(KIND, owner, lambda ctx: _follow_job(ctx, run, token, owner), title=title, config=info)


def _token(token: str | None) -> str:
    """The visitor's token (OAuth or typed), else HF_TOKEN locally; never the Space's own."""
    from services.hub.push import has_env_token, resolve_token

    if not (token or "").strip() and not has_env_token():
        raise PlaygroundError("A run on Hugging Face Jobs needs your Hugging Face token: sign in, or set HF_TOKEN.")
    return resolve_token(token)


def _follow_job(ctx, run: Run, token: str, owner: str, seen: int = 0) -> dict:
    path = ctx.workdir / SEEN_FILE
    ctx.log(f"Following run {run.run_id} on Hugging Face Jobs: {run.nodes} node(s) of {run.flavor}")
    for note in run.notes if not seen else []:
        ctx.log(note)
    try:
        result = follow(run, token, ctx, cancel=ctx._cancel, seen=seen, detach=ctx._manager.closing,
                        on_seen=lambda n: path.write_text(json.dumps({"seen": n})))  # fmt: skip
    except Detached as err:
        raise JobDetached() from err
    except RunCancelled as err:
        ctx.log(str(err))
        raise JobCancelled() from err
    from services.models import remote_results
    from services.models.catalog import resolve

    try:
        result["report"] = read_report(token, run.target, remote_results.local_dir(owner, run.target))
        description = f"Trained on Hugging Face Jobs ({run.flavor} x {run.nodes})"
        remote_results.remember(owner, run.target, (), description)  # listed first: resolve then reads its copy
        remote_results.remember(owner, run.target, resolve(run.target, owner).tasks, description)
    except PlaygroundError as err:  # the model is on the Hub; only the local copy failed
        ctx.log(f"The model is on the Hub, but downloading it here failed: {err}")
    return result


def reattach(manager, job_id: str, owner: str, token: str | None) -> bool:
    """Follow again a run that a restarted app lost sight of; whether a follower was started."""
    record = manager.get(job_id, owner)
    remote = (record.config or {}).get("remote")
    if record.done or not remote:
        return False
    token = _token(token)
    run = Run(**remote)
    try:
        seen = int(json.loads((manager.jobs_dir / job_id / SEEN_FILE).read_text())["seen"])
    except (OSError, ValueError, KeyError):
        seen = 0
    return manager.adopt(job_id, owner, lambda ctx: _follow_job(ctx, run, token, owner, seen))


def keep_following(manager, record, owner: str, token: str | None) -> None:
    """A look at a running remote job: follow it again if nobody does (after an app restart). Without a token the
    record's message says what to do."""
    try:
        reattach(manager, record.id, owner, token)
    except PlaygroundError:
        message = "Running on Hugging Face Jobs: sign in with Hugging Face to follow it again"
        manager.store.update(record.id, only_active=True, message=message)


def outputs(manager, job_id: str, owner: str) -> dict:
    """What a finished remote run left: the Hub id of its model (in the catalog) and its report."""
    record = manager.get(job_id, owner)
    result = record.result or {}
    report = result.get("report") or {}
    return {
        "status": record.status,
        "summary": scrub({k: v for k, v in result.items() if k != "report"}),  # the job's paths become names
        "report": scrub(report.get("report") or {}),
        "metrics": report.get("metrics") or {},
        "model_id": result.get("repo_id") if record.status == "succeeded" else None,
        "url": result.get("url"),
        "resumable": False,
        "name": (record.config or {}).get("name"),
    }
