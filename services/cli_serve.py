"""The `python -m services serve | api-key | bundle | export-onnx` commands; `services.__main__` parses them."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.cli_rag import print_json


def cmd_serve(args: argparse.Namespace) -> None:
    """The REST API alone (no UI) with uvicorn: the same endpoints as on the app's port."""
    import uvicorn

    from services.serve.api import create_api

    uvicorn.run(create_api(), host=args.host, port=args.port, log_level="warning")


def cmd_api_key(args: argparse.Namespace) -> None:
    from services.serve.auth import api_key

    print_json({"owner": args.owner, "api_key": api_key(args.owner)})


def cmd_bundle(args: argparse.Namespace) -> None:
    from services.serve.bundle import build, zip_bundle

    result = build(args.model, Path(args.output_dir), owner=args.owner)
    if args.zip:
        result["zip"] = str(zip_bundle(Path(result["folder"])))
    print_json(result)


def register(add) -> None:
    """Add the commands to the parser (`add(name, func, help)` returns the sub-parser, with --owner)."""
    p = add("serve", cmd_serve, "Serve the OpenAI-compatible REST API alone (no UI) with uvicorn.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    add("api-key", cmd_api_key, "Print your API key for the REST API (it acts as --owner).")
    p = add("bundle", cmd_bundle, "Write a standalone server for one model: server.py, requirements, Dockerfile.")
    p.add_argument("model", help="catalog id, trained:<name>, Hub id or folder (chat, embeddings or classifier)")
    p.add_argument("--output-dir", required=True, help="a new (or empty) folder for the bundle")
    p.add_argument("--zip", action="store_true", help="also write the folder as a zip beside it")
