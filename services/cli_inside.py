"""The `python -m services inspect | attention | logit-lens` commands (Inside a model); `services.__main__` parses
them. Each prints JSON on stdout with full-precision floats; sentences about the input (the text was cut to the
first tokens, the attention was switched to eager) go to stderr, so stdout stays exactly the contract.
"""

from __future__ import annotations

import argparse

from services.cli_rag import print_json, say


def _notices(notices: list[str]) -> None:
    for notice in notices:
        say(f"Note: {notice}")


def cmd_inspect(args: argparse.Namespace) -> None:
    from services.inside.anatomy import inspect_model

    print_json(inspect_model(args.model, owner=args.owner))


def cmd_attention(args: argparse.Namespace) -> None:
    from services.inside import common, forward

    loaded, _ = common.load_model(args.model, args.owner)
    result = forward.views(loaded, args.text, max_tokens=args.max_tokens, precise=True, parts=("attention",))
    _notices(result["notices"])
    print_json({"tokens": result["tokens"], "attentions": result["attentions"]})


def cmd_logit_lens(args: argparse.Namespace) -> None:
    from services.inside.forward import logit_lens

    result = logit_lens(args.model, args.text, owner=args.owner, top_k=args.top_k, position=args.position)
    _notices(result["notices"])
    print_json(result)


def register(add) -> None:
    """Add the commands to the parser (`add(name, func, help)` returns the sub-parser, with --owner)."""
    p = add("inspect", cmd_inspect, "A model's modules with their parameter counts, its config explained, and memory.")
    p.add_argument("model", help="catalog id, Hub id, trained:<name>, adapter or folder")
    p = add("attention", cmd_attention, 'The attention weights of one forward pass: {"tokens", "attentions"}.')
    p.add_argument("model", help="catalog id, Hub id, trained:<name>, adapter or folder")
    p.add_argument("--text", required=True, help="the text to run through the model")
    p.add_argument("--max-tokens", type=int, default=None, help="read at most this many tokens (default: the cap)")
    p = add("logit-lens", cmd_logit_lens, "What the model would predict after each layer (the logit lens), as JSON.")
    p.add_argument("model", help="a causal LM (next token) or a masked LM (fill-mask), by any model id")
    p.add_argument("--text", required=True, help="the text to run through the model")
    p.add_argument("--top-k", type=int, default=5, help="guesses per layer (default 5)")
    p.add_argument("--position", type=int, default=None, help="the token to read (default: the last, or each mask)")
