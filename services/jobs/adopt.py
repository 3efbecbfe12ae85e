"""Jobs whose work runs elsewhere (a training on Hugging Face Jobs): the app only follows them, so a restarted app
can take one over again instead of calling it interrupted. Mixed into `services.jobs.manager.JobManager`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from services.jobs.child import identity_alive

# Jobs that follow work running on other machines: they hold no worker slot and survive an app restart.
REMOTE_KINDS = frozenset({"remote-train"})


def is_remote(record: Any) -> bool:
    return record.kind in REMOTE_KINDS and bool((record.config or {}).get("remote"))


class AdoptJobs:
    store: Any
    identity: str
    _lock: threading.Lock
    _threads: dict

    def check_room(self, owner: str) -> None:
        """Refuse now, in a sentence, when the owner may not start another job (before work starts elsewhere)."""
        with self._lock:
            self._check_quota(owner)  # type: ignore[attr-defined]

    def adopt(self, job_id: str, owner: str, fn: Callable) -> bool:
        """Follow again a remote job that no live manager follows; `fn(ctx)` as in `submit`. Whether it started."""
        record = self.get(job_id, owner)  # type: ignore[attr-defined]
        with self._lock:
            if record.done or job_id in self._threads or not is_remote(record):
                return False
            if record.manager != self.identity and identity_alive(record.manager):
                return False  # another app process follows it
            self.store.update(job_id, manager=self.identity, message="Following again")
        self._start(record, record.config or {}, lambda ctx: self._run_function(job_id, fn, ctx))  # type: ignore[attr-defined]
        return True
