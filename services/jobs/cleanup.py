"""Clearing a visitor's finished jobs: the records of those that succeeded, failed, were cancelled or were
interrupted, with their events and their files (the job's folder, the config it ran). Jobs still queued or running
are never touched, nor another owner's; what a job made (a trained model, a tokenizer, a collection) is kept."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from services.core.config import get_settings
from services.core.owners import owner_dir

logger = logging.getLogger(__name__)


def _config_folders(owner: str) -> list[Path]:
    """Where the app writes the config a job of `owner` runs (training, tokenizer training)."""
    home = get_settings().home
    return [owner_dir(home / "configs", owner), owner_dir(home / "uploads", owner) / "tokenizer-configs"]


def clear_finished(manager, owner: str) -> dict:
    """Delete the owner's finished jobs and their files; returns {"cleared": N, "ids": [...]}."""
    finished = [r for r in manager.list(owner, limit=10_000) if r.done]
    gone = set(manager.store.delete_finished(owner, [r.id for r in finished]))
    folders = [f.resolve() for f in _config_folders(owner)]
    # A job started again runs the same config file: keep every file a remaining job still names.
    kept = {str(a) for r in manager.list(owner, limit=10_000) for a in r.command or []}
    for record in finished:
        if record.id not in gone:
            continue
        # Only the job's own folder and its configs: a command also names data files that other jobs may still use.
        configs = [Path(a) for a in record.command or [] if str(a).endswith((".yaml", ".yml")) and str(a) not in kept]
        workdir = manager.jobs_dir / record.id
        try:
            if workdir.is_dir():
                shutil.rmtree(workdir)
            for path in configs:
                if path.is_file() and any(path.resolve().is_relative_to(f) for f in folders):
                    path.unlink()
        except OSError:
            logger.exception("Could not remove all the files of cleared job %s", record.id)
    ids = [r.id for r in finished if r.id in gone]
    logger.info("Cleared %d finished job(s) of one owner", len(ids))
    return {"cleared": len(ids), "ids": ids}
