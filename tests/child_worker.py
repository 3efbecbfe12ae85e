"""A stand-in for `python -m services train ...` in job-engine tests: it speaks the same event protocol.

python -m tests.child_worker --steps 5 --sleep 0.1 [--fail-at 3] [--ignore-term] [--die-at 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from services.jobs.events import EventWriter, cancel_requested, install_cancel_handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--fail-at", type=int, default=-1)
    parser.add_argument("--die-at", type=int, default=-1, help="SIGKILL itself, like the kernel's OOM killer")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--bad-events", action="store_true", help="send malformed events first")
    parser.add_argument("--orphan", action="store_true", help="leave a grandchild holding stdout, then exit")
    parser.add_argument("--print-nice", action="store_true", help="print this process's CPU niceness")
    args = parser.parse_args()
    events = EventWriter()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        install_cancel_handler()
    if args.print_nice:
        time.sleep(0.3)  # the supervisor lowers the priority just after the start
        print(f"niceness {os.nice(0)}", flush=True)
        print(f"policy {os.sched_getscheduler(0)}", flush=True)
    print("plain output from a library", flush=True)
    print(f"token in the environment: {os.environ.get('HF_TOKEN', '-')}", flush=True)
    workdir = Path(os.environ.get("PLAYGROUND_JOB_DIR", "."))
    if args.bad_events:
        events.emit("progress", fraction=None, message="no number")
        events.emit("progress", fraction="half")
        events.emit("metrics", values=[1, 2, 3])
        events.emit("teleport", where="moon")
    if args.orphan:
        import subprocess

        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # inherits our stdout
        events.result({"orphaned": True})
        return 0
    for step in range(1, args.steps + 1):
        if cancel_requested():
            (workdir / "checkpoint.txt").write_text(f"saved at step {step - 1}")
            events.artifact(str(workdir / "checkpoint.txt"), kind="checkpoint")
            events.log("cancel received: checkpoint saved")
            return 0
        if step == args.fail_at:
            events.error(f"step {step} went wrong on purpose")
            return 1
        if step == args.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(args.sleep)
        events.metrics({"loss": 1.0 / step}, step=step)
        events.progress(step / args.steps, f"step {step}/{args.steps}")
    events.result({"steps": args.steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
