"""The `python -m services rag ...` commands (ingest, ask, draft-pairs, adapt); `services.__main__` parses them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.core.errors import PlaygroundError


def print_json(data) -> None:
    """What every command prints: its result as indented JSON."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def say(line: str) -> None:
    """A line for the person at the terminal, on stderr (stdout keeps the command's JSON)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def cmd_rag(args: argparse.Namespace) -> None:
    from services.jobs.events import EventWriter
    from services.rag import answer as rag

    if args.rag_command == "ingest":
        events = EventWriter()
        options = {"chunk_size": args.chunk_size, "overlap": args.overlap, "progress": events.progress}
        if args.dataset:
            summary = rag.ingest_dataset(args.collection, args.dataset, args.column, args.owner, **options)
        elif args.files:
            from services.core.uploads import discard

            summary = rag.ingest(args.collection, args.files, args.owner, **options)
            discard(args.files, args.owner)  # the copies staged for this job (a failed one keeps them, to retry)
        else:
            raise PlaygroundError("Give the files to index (or --dataset ID --column NAME).")
        events.result(summary)
        print_json(summary)
    elif args.rag_command == "draft-pairs":
        from services.rag import adapt

        print_json(adapt.draft_pairs(args.collection, args.owner, args.count))
    elif args.rag_command == "adapt":
        _rag_adapt(args)
    else:
        result = rag.ask(args.collection, args.question, args.owner, top_k=args.top_k, model=args.model)
        print_json({"answer": result["answer"], "citations": result["citations"]})


def _rag_adapt(args: argparse.Namespace) -> None:
    """Checked pairs -> RAG chat's conversations (DIR/conversations.jsonl) -> DIR/job.yaml -> the adapter in
    DIR/adapter, trained here (what the RAG tab's "Train the adapter" runs as a job)."""
    from services.jobs.events import install_cancel_handler
    from services.rag import adapt
    from services.training.config import TrainConfig
    from services.training.train import train

    pairs = adapt.check_pairs(json.loads(Path(args.pairs).read_text(encoding="utf-8")))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = adapt.training_rows(args.collection, args.owner, pairs)
    data = adapt.write_jsonl(rows, out / "conversations.jsonl")
    config = TrainConfig.from_dict({**adapt.job_config(str(data.resolve())), "output_dir": str(out / "adapter")})
    (out / "job.yaml").write_text(config.to_yaml(), encoding="utf-8")
    if args.no_train:
        print_json({"conversations": len(rows), "job": str(out / "job.yaml")})
        return
    install_cancel_handler()
    print_json(train(config, owner=args.owner))
