"""Hugging Face Jobs through `huggingface_hub.HfApi`: the hardware list, starting a run's jobs, following one job's
log lines, the stage of each, cancelling, and the private dataset repo a run's files travel in.

Every Hub refusal becomes a sentence that says what to do (`JobsError`): a token without the Jobs permission, a
plan without Jobs, an unknown flavor, a namespace that is not the caller's. The token is handed to `HfApi` only: it
is never logged or stored, and it reaches a job as a secret (encrypted by the Hub, never echoed back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import AccessDenied, PlaygroundError
from services.core.redact import mask

logger = logging.getLogger(__name__)
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


class JobsError(PlaygroundError):
    """A run on Hugging Face Jobs that could not be started or followed, said in words."""


@dataclass(frozen=True)
class Hardware:
    name: str  # the flavor, e.g. a10g-small
    pretty: str
    accelerator: str  # "1x A10G (24 GB)" or "CPU only"
    cpu: str
    ram: str
    usd_per_hour: float

    @property
    def label(self) -> str:
        return f"{self.pretty} · {self.accelerator} · {self.cpu}, {self.ram} · ${self.usd_per_hour:.2f}/h"


def _api(token: str):
    from huggingface_hub import HfApi

    return HfApi(token=token)


def explain(err: Exception) -> PlaygroundError:
    """A sentence for a refusal of the Jobs API (or of the repo it needs)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(err, PlaygroundError):
        return err
    if isinstance(err, OfflineModeIsEnabled):
        return JobsError("The playground is offline (HF_HUB_OFFLINE=1): Hugging Face Jobs needs the Hub.")
    status = getattr(getattr(err, "response", None), "status_code", None)
    detail = mask(str(err)).splitlines()
    hub_says = next((line for line in reversed(detail) if line.strip() and "http" not in line), "")[:200]
    if status == 401:
        return AccessDenied("The Hub refused the token: it is wrong or has expired. Sign in again or make a new one.")
    if status == 402:
        return AccessDenied(
            "Your Hugging Face plan has no Jobs: Jobs are for PRO users and Team or Enterprise organizations (with "
            "credits). Run the training on this machine instead."
        )
    if status == 403:
        return AccessDenied(
            "This token may not run Jobs: make a token with the 'Jobs' permission (or sign in again and allow "
            "Jobs), then start the run again."
        )
    if status == 400:
        return JobsError(f"Hugging Face Jobs refused the run: {hub_says or 'bad request'}")
    if status == 404:
        return JobsError("Hugging Face Jobs has no such job for this account (it may have been deleted).")
    return JobsError(f"Hugging Face Jobs could not be reached ({type(err).__name__}): try again in a minute.")


def _call(action: Callable, what: str):
    try:
        return action()
    except Exception as err:
        logger.info("%s failed: %s", what, mask(str(err))[:300])
        raise explain(err) from err


def namespace(token: str) -> str:
    info = _call(lambda: _api(token).whoami(), "whoami")
    return info["name"]


def hardware(token: str) -> list[Hardware]:
    """The flavors Jobs offers, cheapest first, with their price per hour."""
    found = []
    for hw in _call(lambda: _api(token).list_jobs_hardware(), "list_jobs_hardware"):
        acc = hw.accelerator
        accelerator = f"{acc.quantity}x {acc.model} ({acc.vram})" if acc is not None else "CPU only"
        per_hour = hw.unit_cost_usd * {"minute": 60, "second": 3600, "hour": 1}.get(hw.unit_label, 60)
        found.append(Hardware(hw.name, hw.pretty_name, accelerator, hw.cpu, hw.ram, round(per_hour, 2)))
    return sorted(found, key=lambda h: h.usd_per_hour)


def upload_run(token: str, repo_id: str, run_id: str, files: dict[str, Path | bytes]) -> None:
    """The run's files (job.yaml, its data) into `runs/<run_id>/` of the user's private dataset repo."""
    from huggingface_hub import CommitOperationAdd

    api = _api(token)
    _call(lambda: api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True), "create_repo")
    operations = [
        CommitOperationAdd(f"runs/{run_id}/{name}", content if isinstance(content, bytes) else str(content))
        for name, content in files.items()
    ]
    message = f"HF Playground run {run_id}"
    _call(lambda: api.create_commit(repo_id, operations, repo_type="dataset", commit_message=message), "upload")


def download_run(token: str, repo_id: str, run_id: str, into: Path) -> Path:
    """Inside a job: the run's folder from the dataset repo."""
    from huggingface_hub import snapshot_download

    folder = _call(
        lambda: snapshot_download(repo_id, repo_type="dataset", allow_patterns=[f"runs/{run_id}/*"], local_dir=into,
                                  token=token),
        "download",
    )  # fmt: skip
    return Path(folder) / "runs" / run_id


def run(token: str, **spec) -> str:
    """Start one job (`HfApi.run_job` arguments); returns its id."""
    return _call(lambda: _api(token).run_job(**spec), "run_job").id


def stage(token: str, job_id: str) -> tuple[str, str | None]:
    info = _call(lambda: _api(token).inspect_job(job_id=job_id), "inspect_job")
    return str(info.status.stage), info.status.message


def cancel(token: str, job_id: str) -> None:
    _call(lambda: _api(token).cancel_job(job_id=job_id), "cancel_job")


def log_lines(token: str, job_id: str, follow: bool = True, tail: int | None = None) -> Iterator[str]:
    """One job's log lines from its start (`follow`: until it ends). huggingface_hub reconnects a dropped stream
    itself and skips the lines it already gave."""
    api = _api(token)
    try:
        yield from api.fetch_job_logs(job_id=job_id, follow=follow, tail=tail)
    except Exception as err:
        raise explain(err) from err


def wait_terminal(token: str, job_id: str, timeout: float = 120.0) -> tuple[str, str | None]:
    """The job's final stage: the stage lags its last log line by a second or so."""
    deadline = time.monotonic() + timeout
    while True:
        current = stage(token, job_id)
        if current[0] in TERMINAL or time.monotonic() > deadline:
            return current
        time.sleep(0.5)


def model_url(token: str, repo_id: str) -> str | None:
    """The pushed model's page, or None when the repo is not there."""
    try:
        info = _api(token).model_info(repo_id)
    except Exception:
        return None
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/{info.id}"


def download_model(token: str, repo_id: str, into: Path) -> Path:
    """A copy of the pushed model in `into` (the owner's own folder, not the shared HF cache)."""
    from huggingface_hub import snapshot_download

    return Path(_call(lambda: snapshot_download(repo_id, token=token, local_dir=into), "download"))
