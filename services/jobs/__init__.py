"""Background jobs: threads and child processes that outlive a request, with their progress, logs and metrics.

`manager` (`JobManager`: submit, cancel, retry, quotas, fair slots), `child` (jobs run as `python -m services ...`
child processes), `context` (what in-process work reports through), `store` (the SQLite job table), `events` (the
JSON-lines protocol children write), `slots` (fair worker and GPU slots). Exports `JobManager`, `JobContext` and
`JobCancelled`.
"""

from services.jobs.context import JobCancelled, JobContext
from services.jobs.manager import JobManager

__all__ = ["JobCancelled", "JobContext", "JobManager"]
