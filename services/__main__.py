"""The command line: the same service functions the tabs call, scriptable and printing JSON.

    python -m services info                      device, offline mode, storage folder
    python -m services models [--task T]         the model catalog as JSON
    python -m services prepare MODEL [--task T]  make a model ready (convert/download) and check it loads
    python -m services run TASK --model M --input TEXT|JSON [--param KEY=VALUE ...]
                                                 run a task; prints the transformers 4.x pipeline output
    python -m services jobs [--owner O]          your jobs as JSON
    python -m services jobs clear [--owner O]    delete your finished jobs and their files (never running ones)
    python -m services job ID [--owner O]        one job with its last log lines
    python -m services tokenizers                the tokenizers you can pick, as JSON
    python -m services tokenize --tokenizer T --text TEXT [--no-special-tokens]
                                                 one {id, token, start, end, special} per token, as JSON
    python -m services decode --tokenizer T --ids "101, 7592, 102" [--skip-special-tokens]
    python -m services push PATH --repo-id NAMESPACE/NAME [--repo-type model|dataset|space] [--private]
                        [--revision BRANCH] [--message TEXT] [--tag TAG] [--new-repo]
                                                 push a folder or file to the Hub (token: HF_TOKEN); prints
                                                 {"url", "commit", ...}
    python -m services train CONFIG.yaml         fine-tune a model; writes the model, metrics.json, README.md, job.yaml
                                                 and events.jsonl to output_dir (see services.training.config)
    python -m services train CONFIG.yaml --on hf-jobs --flavor a10g-small --nodes 2 [--timeout 2h]
                                                 the same on Hugging Face Jobs (token: HF_TOKEN); waits, exits 0
                                                 once the result is pushed to push_to_hub.repo_id (services.cli_jobs)
    python -m services lora mask JOB.yaml        a chat job's loss mask: the first conversations token by token with
                                                 {"trained": true|false}, counts and warnings, as JSON
    python -m services lora merge ADAPTER_DIR --output DIR
                                                 merge a LoRA adapter into its base, save the full model and print
                                                 the checks (saved vs in memory, merged vs adapter and vs base)
    python -m services rag ingest --collection NAME FILE...   index documents (a job in the app)
    python -m services rag ask --collection NAME QUESTION [--top-k K] [--model M]
    python -m services rag draft-pairs --collection NAME [--count N]   question/answer pairs from its passages
    python -m services rag adapt --collection NAME --pairs P.json --output-dir DIR [--no-train]
                                                 prints {"answer", "citations": [{"source", "text", "score", "page"}]}
    python -m services serve [--host H] [--port P]   the OpenAI-compatible REST API alone (no UI)
    python -m services api-key                   your key for the REST API
    python -m services bundle MODEL --output-dir DIR [--zip]   a standalone server for one model
    python -m services export-onnx MODEL --output-dir DIR [--samples S.jsonl]   ONNX + int8, parity and speed
    python -m services check-fast-cpu [--tokens N] [--runs R]   the fast CPU SmolLM2 against the float32 one
    python -m services inspect MODEL             a model's modules and parameter counts, its config explained, memory
    python -m services attention MODEL --text T  one forward pass's attention: {"tokens", "attentions"} (full floats)
    python -m services logit-lens MODEL --text T [--top-k K]   the top next-token guesses after each layer
    python -m services demo-space MODEL_ID --task TASK --space-id NAMESPACE/NAME [--title T] [--private]
                                                 a Gradio demo Space for a model on the Hub; prints {"url", ...}
    python -m services train-tokenizer CONFIG.yaml
                                                 train a BPE / WordPiece / Unigram tokenizer (see
                                                 services.tokenizers.training.TokenizerTrainConfig)

A user mistake prints one sentence on stderr and exits with status 2. The CLI acts as its own owner,
``cli:<login name>``; `--owner` picks another (for example to look at the jobs a browser session started).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from services import cli_inside, cli_jobs, cli_rag, cli_serve
from services.cli_rag import print_json as _print
from services.core.errors import PlaygroundError


def _default_owner() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:user"


def cmd_info(args: argparse.Namespace) -> None:
    from services.core.system import describe

    _print(describe())


def cmd_models(args: argparse.Namespace) -> None:
    from services.models.catalog import catalog

    available_only = None if not args.all else False
    _print([e.to_dict() for e in catalog(args.task, owner=args.owner, available_only=available_only)])


def cmd_prepare(args: argparse.Namespace) -> None:
    from services.jobs.events import EventWriter
    from services.models.catalog import resolve
    from services.models.loading import load

    events = EventWriter()
    task = args.task or (resolve(args.model, args.owner).tasks or ("feature-extraction",))[0]
    loaded = load(args.model, task, owner=args.owner, progress=events.progress)
    summary = {
        "id": loaded.id,
        "task": task,
        "location": loaded.location,
        "device": loaded.device,
        "dtype": loaded.dtype,
        "parameters_mb": round(loaded.nbytes / 2**20, 1),
        "load_seconds": round(loaded.load_seconds, 2),
    }
    events.result(summary)
    _print(summary)


def _json_or_text(value: str):
    """A JSON value when the text parses as one, else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def cmd_run(args: argparse.Namespace) -> None:
    from services.pipelines import parse_inputs, run

    inputs = parse_inputs(args.input)
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"'{item}' is not KEY=VALUE.")
        params[key.strip()] = _json_or_text(value)
    _print(run(args.task, args.model, inputs, owner=args.owner, **params))


def _manager():
    from services.jobs.manager import JobManager

    # Read-only use: do not recover (or otherwise touch) jobs that a running app owns.
    return JobManager.from_settings(recover=False)


def cmd_jobs(args: argparse.Namespace) -> None:
    if args.action == "clear":
        from services.jobs.cleanup import clear_finished

        _print(clear_finished(_manager(), args.owner))
        return
    _print([r.to_dict() for r in _manager().list(args.owner)])


def cmd_job(args: argparse.Namespace) -> None:
    manager = _manager()
    record = manager.get(args.id, args.owner).to_dict()
    record["logs"] = manager.logs(args.id, args.owner, tail=args.tail)
    _print(record)


def cmd_tokenizers(args: argparse.Namespace) -> None:
    from services.tokenizers.analysis import catalog

    _print([e.to_dict() for e in catalog(args.owner)])


def cmd_tokenize(args: argparse.Namespace) -> None:
    from services.tokenizers.analysis import tokenize

    _print(tokenize(args.tokenizer, args.text, add_special_tokens=not args.no_special_tokens, owner=args.owner))


def cmd_decode(args: argparse.Namespace) -> None:
    from services.tokenizers.tools import decode

    _print(decode(args.tokenizer, args.ids, skip_special_tokens=args.skip_special_tokens, owner=args.owner))


def cmd_train_tokenizer(args: argparse.Namespace) -> None:
    from services.jobs.events import EventWriter, install_cancel_handler
    from services.tokenizers.analysis import tokenizers_root
    from services.tokenizers.jobs import load_config
    from services.tokenizers.training import train

    events = EventWriter()
    cancel = install_cancel_handler()
    config = load_config(args.config)
    summary = train(config, tokenizers_root(args.owner) / config.name, events.progress, cancelled=cancel.is_set)
    events.result(summary)
    _print(summary)


def cmd_train(args: argparse.Namespace) -> None:
    from services.jobs.events import install_cancel_handler
    from services.training.config import TrainConfig
    from services.training.train import train

    if args.on == "hf-jobs":
        cli_jobs.train_remote(args)
        return
    install_cancel_handler()  # Cancel (SIGTERM) saves a checkpoint and stops
    _print(train(TrainConfig.from_yaml(args.config), owner=args.owner))


def cmd_lora(args: argparse.Namespace) -> None:
    from services.training.config import TrainConfig
    from services.training.mask import loss_mask

    _print(loss_mask(TrainConfig.from_yaml(args.config), owner=args.owner, examples=args.examples))


def cmd_lora_merge(args: argparse.Namespace) -> None:
    from services.jobs.events import EventWriter
    from services.training.merge import merge

    events = EventWriter()
    result = merge(args.adapter, args.output, owner=args.owner, progress=events.progress)
    from services.training.lora_jobs import write_merged_card

    write_merged_card(Path(result["output_dir"]), args.adapter, result["base_model"], result)
    events.result({k: v for k, v in result.items() if k != "output_dir"})  # a job's visitor never sees server paths
    _print(result)


def cmd_push(args: argparse.Namespace) -> None:
    from services.hub.push import push
    from services.jobs.events import EventWriter

    events = EventWriter()
    result = push(
        args.path,
        args.repo_id,
        repo_type=args.repo_type,
        private=args.private,
        revision=args.revision,
        message=args.message,
        tag=args.tag,
        new_repo=args.new_repo,
        # A push job from the app hands the user's token over in this variable only (never in the command line).
        token=os.environ.get("PLAYGROUND_PUSH_TOKEN"),
        progress=events.progress,
    )
    events.result(result)
    _print(result)


def cmd_demo_space(args: argparse.Namespace) -> None:
    import tempfile

    from services.hub.spaces import create_demo_space
    from services.jobs.events import EventWriter

    events = EventWriter()
    with tempfile.TemporaryDirectory(prefix="space-") as folder:
        result = create_demo_space(
            folder,
            args.model_id,
            args.task,
            args.space_id,
            title=args.title,
            private=args.private,
            token=os.environ.get("PLAYGROUND_PUSH_TOKEN"),
            progress=events.progress,
        )
    events.result(result)
    _print(result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services", description="HF Playground from the command line.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what happens on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--owner", default=_default_owner(), help="act as this owner (default: cli:<login>)")
        p.set_defaults(func=func)
        return p

    add("info", cmd_info, "Show the device, offline mode and storage folder.")
    p = add("models", cmd_models, "Print the model catalog as JSON.")
    p.add_argument("--task", help="only models that can do this task (e.g. text-generation)")
    p.add_argument("--all", action="store_true", help="include models that are not available now")
    p = add("prepare", cmd_prepare, "Make a model ready to use (convert or download it) and check that it loads.")
    p.add_argument("model", help="catalog id, Hub id, trained:<name> or folder")
    p.add_argument("--task", help="the task to load it for (default: its first task)")
    p = add("run", cmd_run, "Run a task on a model and print the result as JSON (transformers 4.x schema).")
    p.add_argument("task", help="e.g. sentiment-analysis, ner, question-answering, summarization, text-generation")
    p.add_argument("--model", required=True, help="catalog id, Hub id, trained:<name> or folder")
    p.add_argument("--input", required=True, help='plain text, or JSON such as {"question": ..., "context": ...}')
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a task setting (JSON value)")
    p = add("jobs", cmd_jobs, "List your jobs as JSON, or clear the finished ones.")
    p.add_argument("action", nargs="?", choices=["list", "clear"], default="list",
                   help="list (default), or clear: delete your finished jobs and their files")  # fmt: skip
    p = add("job", cmd_job, "Show one job with its last log lines.")
    p.add_argument("id")
    p.add_argument("--tail", type=int, default=50, help="how many log lines to show")
    add("tokenizers", cmd_tokenizers, "List the tokenizers you can pick, as JSON.")
    p = add("tokenize", cmd_tokenize, "Tokenize a text; prints one {id, token, start, end, special} per token.")
    p.add_argument("--tokenizer", required=True, help="catalog id, tokenizer:<name>, trained:<name>, Hub id or folder")
    p.add_argument("--text", required=True, help="the text to tokenize")
    p.add_argument("--no-special-tokens", action="store_true", help="do not add [CLS], </s> and the like")
    p = add("decode", cmd_decode, "Turn token ids back into text.")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--ids", required=True, help="ids such as '101, 7592, 102' or a JSON list")
    p.add_argument("--skip-special-tokens", action="store_true")
    p = add("push", cmd_push, "Push a folder (or a file) to the Hub in one commit; prints the URL and commit id.")
    p.add_argument("path", help="the folder or file to push")
    p.add_argument("--repo-id", required=True, help="NAMESPACE/NAME, e.g. alice/my-model")
    p.add_argument("--repo-type", default="model", choices=["model", "dataset", "space"])
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="a branch to push to (created when missing); default main")
    p.add_argument("--message", help="the commit message")
    p.add_argument("--tag", help="tag the new commit (e.g. v1)")
    p.add_argument("--new-repo", action="store_true", help="refuse to write into a repo that already exists")
    p = add("train", cmd_train, "Fine-tune a model from a YAML config (see services.training.config.TrainConfig).")
    p.add_argument("config", help="YAML with task, model, dataset, max_length, training, output_dir, ...")
    cli_jobs.add_train_options(p)
    cli_jobs.add_node_command(add)
    p = add("lora", cmd_lora, "LoRA tools: show a chat job's loss mask before training.")
    lora_sub = p.add_subparsers(dest="lora_command", required=True)
    mask = lora_sub.add_parser("mask", help="print the first conversations' tokens with a trained flag, as JSON")
    mask.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    mask.add_argument("--examples", type=int, default=3, help="how many conversations to show (default 3)")
    mask.add_argument("config", help="the job's YAML (task: chat, model, dataset, loss_on, max_length, ...)")
    merge = lora_sub.add_parser("merge", help="merge an adapter into its base; prints the checks' figures as JSON")
    merge.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    merge.add_argument("--output", required=True, help="a new (or empty) folder for the merged model")
    merge.add_argument("adapter", help="the adapter folder (adapter_config.json + adapter_model.safetensors)")
    merge.set_defaults(func=cmd_lora_merge)
    p = add("rag", cli_rag.cmd_rag, "Index documents into a collection, or ask it a question.")
    rag_sub = p.add_subparsers(dest="rag_command", required=True)
    ingest = rag_sub.add_parser("ingest", help="add files (TXT, MD, HTML, PDF, DOCX, CSV, ZIP) to a collection")
    ingest.add_argument("--collection", required=True)
    ingest.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    ingest.add_argument("--chunk-size", type=int, default=160, help="tokens per chunk (default 160)")
    ingest.add_argument("--overlap", type=int, default=32, help="tokens shared by neighbouring chunks (default 32)")
    ingest.add_argument("--dataset", help="index a column of this Hub dataset instead (needs the Hub)")
    ingest.add_argument("--column", default="text", help="the dataset's text column (default text)")
    ingest.add_argument("files", nargs="*")
    ask = rag_sub.add_parser("ask", help='answer from a collection; prints {"answer", "citations"}')
    ask.add_argument("--collection", required=True)
    ask.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    ask.add_argument("--top-k", type=int, default=4)
    ask.add_argument("--model", help="the answering model (default: the packaged SmolLM2)")
    ask.add_argument("question")
    draft = rag_sub.add_parser("draft-pairs", help="question/answer pairs drafted from a collection, as JSON")
    draft.add_argument("--collection", required=True)
    draft.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    draft.add_argument("--count", type=int, default=8)
    adapt_p = rag_sub.add_parser("adapt", help="train an answering-model adapter on checked question/answer pairs")
    adapt_p.add_argument("--collection", required=True)
    adapt_p.add_argument("--owner", default=argparse.SUPPRESS, help="act as this owner")
    adapt_p.add_argument("--pairs", required=True, help="JSON list of {question, answer, passage}")
    adapt_p.add_argument("--output-dir", required=True, help="conversations.jsonl, job.yaml and adapter/ go here")
    adapt_p.add_argument("--no-train", action="store_true", help="write the conversations and job.yaml only")
    p = add("demo-space", cmd_demo_space, "Create a Gradio Space that serves a model already on the Hub.")
    p.add_argument("model_id", help="the model's Hub id, e.g. alice/sentiment-minilm")
    p.add_argument("--task", required=True, help="text-classification, token-classification, summarization, ...")
    p.add_argument("--space-id", required=True, help="NAMESPACE/NAME of the new Space (must not exist yet)")
    p.add_argument("--title", help="the demo's title")
    p.add_argument("--private", action="store_true", help="create the Space private")
    cli_serve.register(add)
    cli_inside.register(add)
    p = add("train-tokenizer", cmd_train_tokenizer, "Train a tokenizer from a YAML config; prints a summary.")
    p.add_argument("config", help="YAML with name, model (bpe|wordpiece|unigram), vocab_size, corpus, ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        args.func(args)
    except PlaygroundError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad arguments such as an unknown task
        print(f"Error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        job_dir = os.environ.get("PLAYGROUND_JOB_DIR")
        if job_dir:  # a job's output is shown to its visitor: the traceback (server files) goes to the job folder
            import traceback

            Path(job_dir, "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            print(f"Error: something went wrong on our side ({type(err).__name__}); it is logged.", file=sys.stderr)
            return 1
        logging.getLogger("services").exception("Unexpected error")
        print(f"Error: something went wrong ({type(err).__name__}); the details are logged above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
