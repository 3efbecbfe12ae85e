"""Fair shares of the machine for background jobs: slots handed out owner by owner, not first come first served.

A job waits for a slot (the GPU's, or one of the workers for other jobs). When a slot frees, it goes to the waiting
job whose owner holds the fewest slots right now, then to the owner served least since they last had nothing
waiting or running, the oldest such job first: owners take turns, and a visitor who queued ten jobs does not make
the next visitor wait behind all ten. A cancelled waiter leaves the line.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable


class FairSlots:
    """`slots` slots (None: as many as asked), shared fairly between owners."""

    def __init__(self, slots: int | None):
        self.slots = slots
        self.free = slots if slots is not None else 0
        self.held: Counter[str] = Counter()
        self.served: Counter[str] = Counter()  # slots granted per owner while they kept work queued or running
        self.waiting: list[tuple[str, str]] = []  # (job id, owner) in arrival order
        self.cond = threading.Condition()

    def _order(self) -> list[str]:
        """Waiting job ids in the order they will get a slot."""
        ranked = sorted(
            enumerate(self.waiting), key=lambda item: (self.held[item[1][1]], self.served[item[1][1]], item[0])
        )
        return [job_id for _, (job_id, _) in ranked]

    def acquire(self, job_id: str, owner: str, cancel: threading.Event, on_wait: Callable[[int], None]) -> bool:
        """Block until this job holds a slot (True) or was cancelled while waiting (False)."""
        if self.slots is None:
            with self.cond:
                self.held[owner] += 1
            return True
        reported = -1
        with self.cond:
            self.waiting.append((job_id, owner))
            try:
                while True:
                    order = self._order()
                    if self.free > 0 and order[0] == job_id:
                        break
                    if cancel.is_set():
                        return False
                    ahead = order.index(job_id) + (0 if self.free > 0 else 1)
                    if ahead != reported:
                        on_wait(ahead)
                        reported = ahead
                    self.cond.wait(timeout=0.5)
                self.free -= 1
                self.held[owner] += 1
                self.served[owner] += 1
                return True
            finally:
                self.waiting.remove((job_id, owner))
                self._forget_idle(owner)
                self.cond.notify_all()

    def release(self, owner: str) -> None:
        with self.cond:
            self.held[owner] -= 1
            if self.held[owner] <= 0:
                del self.held[owner]
            if self.slots is not None:
                self.free += 1
            self._forget_idle(owner)
            self.cond.notify_all()

    def _forget_idle(self, owner: str) -> None:
        """An owner with nothing waiting or running starts afresh next time."""
        if not self.held[owner] and not any(o == owner for _, o in self.waiting):
            self.held.pop(owner, None)
            self.served.pop(owner, None)
