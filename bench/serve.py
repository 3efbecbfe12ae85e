"""The REST API against the models called directly (issue 18).

    python -m bench.serve [--runs 7] [--texts 512] [--clients 16]

The app runs in its own process (`python app.py`, offline, local mode). Both sides are measured in this one run,
alternating (ABBA), medians over `--runs`:
- first streamed token: the time to the first content chunk of `/v1/chat/completions` (stream=True, SmolLM2,
  greedy) against the time to the first piece of `services.pipelines.chat.stream` on the model loaded in this
  process (the model's own first-token time). Goal: API <= 1.2x.
- embeddings: `--texts` short sentences sent by `--clients` concurrent clients, `--per-request` texts each, to
  `/v1/embeddings` (MiniLM), against one direct batched `embed` of all of them in this process. Goal: API >= 0.8x
  the direct throughput.
- 50 concurrent clients, 200 embedding requests: how many fail, and whether every answer equals the direct one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from bench.fairness import start_app

CHAT, EMBED = "smollm2-135m-instruct", "all-minilm-l6-v2"
PROMPT = [{"role": "user", "content": "Name three colours of the rainbow."}]


def _local_app(home: Path):
    os.environ.pop("SPACE_ID", None)
    proc, url = start_app(home, {"SPACE_ID": ""})
    return proc, url.rstrip("/")


def api_first_token(client, base: str) -> float:
    body = {"model": CHAT, "messages": PROMPT, "max_tokens": 8, "stream": True, "temperature": 0}
    start = time.perf_counter()
    first = None
    with client.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():  # read to the end, as a client does, so the next run starts clean
            started = first is None and line.startswith("data: {")
            if started and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - start
    return first


def direct_first_token(loaded) -> float:
    from services.pipelines import chat

    start = time.perf_counter()
    stream = chat.stream(loaded, PROMPT, with_scores=False, max_new_tokens=8, do_sample=False)
    for item in stream:
        if item["text"]:
            first = time.perf_counter() - start
            break
    for _ in stream:
        pass
    return first


def api_embeddings(
    base: str, texts: list[str], clients: int, per_request: int = 1, base64: bool = False
) -> tuple[float, dict, int]:
    """`base64`: vectors as base64 float32, as the `openai` package asks for them by default (decoded here)."""
    import httpx

    rows, failures = {}, 0

    def one(client, i):
        body = {"model": EMBED, "input": texts[i : i + per_request]}
        if base64:
            body["encoding_format"] = "base64"
        return i, client.post(f"{base}/v1/embeddings", json=body, timeout=120)

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=clients)
    with httpx.Client(limits=limits) as client, concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for i, response in pool.map(lambda i: one(client, i), range(0, len(texts), per_request)):
            if response.status_code == 200:
                for j, row in enumerate(response.json()["data"]):
                    vector = row["embedding"]
                    rows[i + j] = _decode(vector) if isinstance(vector, str) else vector
            else:
                failures += 1
    return len(texts) / (time.perf_counter() - start), rows, failures


def _decode(text: str) -> list[float]:
    import base64 as b64
    import struct

    raw = b64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def direct_embeddings(loaded, texts: list[str]) -> tuple[float, list]:
    from services.pipelines.embeddings import embed

    start = time.perf_counter()
    rows = embed(loaded, texts, batch_size=64).tolist()
    return len(texts) / (time.perf_counter() - start), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-request", type=int, default=1, help="texts each embeddings request sends")
    parser.add_argument("--base64", action="store_true", help="ask for base64 vectors, as the openai package does")
    args = parser.parse_args()
    import httpx

    from services.models import loading

    chat_model = loading.load(CHAT, "text-generation")
    embed_model = loading.load(EMBED, "sentence-similarity")
    texts = [f"Sentence {i}: the {['cat', 'market', 'river', 'song'][i % 4]} is {i % 11} years old." for i in
             range(args.texts)]  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        proc, base = _local_app(Path(home))
        try:
            client = httpx.Client()
            api_first_token(client, base), direct_first_token(chat_model)  # warm both
            api_embeddings(base, texts[:64], args.clients), direct_embeddings(embed_model, texts[:64])
            first = {"api": [], "direct": []}
            throughput = {"api": [], "direct": []}
            for run in range(args.runs):
                order = ("api", "direct") if run % 2 == 0 else ("direct", "api")
                for side in order:
                    first[side].append(api_first_token(client, base) if side == "api" else
                                       direct_first_token(chat_model))  # fmt: skip
                for side in order:
                    if side == "api":
                        throughput["api"].append(
                            api_embeddings(base, texts, args.clients, args.per_request, args.base64)[0]
                        )
                    else:
                        throughput["direct"].append(direct_embeddings(embed_model, texts)[0])
            _, rows, failures = api_embeddings(base, texts[:200], 50)
            _, direct = direct_embeddings(embed_model, texts[:200])
            same = sum(max(abs(a - b) for a, b in zip(rows[i], direct[i], strict=True)) < 1e-4 for i in rows)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    f_api, f_direct = statistics.median(first["api"]), statistics.median(first["direct"])
    t_api, t_direct = statistics.median(throughput["api"]), statistics.median(throughput["direct"])
    print(json.dumps({
        "runs": args.runs,
        "first_token_ms": {"api": round(f_api * 1000, 1), "direct": round(f_direct * 1000, 1),
                           "ratio_api_over_direct": round(f_api / f_direct, 3), "goal": "<= 1.2"},
        "embeddings_texts_per_s": {"api": round(t_api, 1), "direct": round(t_direct, 1), "clients": args.clients,
                                   "texts_per_request": args.per_request, "base64": args.base64,
                                   "ratio_api_over_direct": round(t_api / t_direct, 3), "goal": ">= 0.8"},
        "concurrent_50_clients_200_requests": {"failed": failures, "equal_to_direct": same, "of": 200},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
