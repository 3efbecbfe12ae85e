"""A server bundle's web server (copied verbatim as `server.py`): one model behind OpenAI's wire format, the same
endpoints and shapes as the HF Playground's own REST API, with none of the playground's code.

    GET  /v1/models, /v1/models/{id}             the one model
    POST /v1/chat/completions, /v1/completions   a chat model; streamed as server-sent events ending in
                                                 `data: [DONE]`, or not
    POST /v1/embeddings, /rerank                 an embedding model (floats or base64 float32)
    POST /predict                                a classifier
    GET  /health, /info                          503 until the model is loaded (in a background thread); what
                                                 it serves, and its running and cancelled generations

`bundle.json` beside this file names the model, its kind and its folder. Errors are OpenAI's JSON shape. Settings
come from the environment: API_KEY (then every /v1, /predict and /rerank request needs `Authorization: Bearer
<key>`), MAX_TOKENS (the cap on max_tokens, 1024), DEVICE (cpu, cuda; the GPU when there is one). Run it with
`uvicorn server:app --host 0.0.0.0 --port 7860`.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import struct
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

if __package__:  # imported inside the HF Playground (its tests and linting)
    from . import bundle_engine as engine
    from . import bundle_wire as wire
else:  # server.py of a bundle: bundle_engine.py and bundle_wire.py beside it
    import bundle_engine as engine
    import bundle_wire as wire

logger = logging.getLogger("bundle")
HERE = Path(__file__).resolve().parent


def create_app(folder: Path = HERE) -> FastAPI:
    """The server for the bundle in `folder` (its bundle.json and model folder)."""
    meta = json.loads((Path(folder) / "bundle.json").read_text(encoding="utf-8"))
    name, kind = meta["name"], meta["kind"]
    model = engine.Engine(Path(folder) / meta.get("model_folder", "model"), kind)
    cap, api_key = wire.int_env("MAX_TOKENS", 1024), os.environ.get("API_KEY") or None
    counts = {"active_generations": 0, "cancelled_generations": 0}
    counts_lock = threading.Lock()

    def count(key: str, step: int) -> None:
        with counts_lock:
            counts[key] += step

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=model.load, name="bundle-load", daemon=True).start()
        yield

    app = FastAPI(title=f"{name}: server bundle", version="1.0", lifespan=lifespan,
                  description=f"OpenAI-compatible API for the {kind} model {name}.")  # fmt: skip

    @app.exception_handler(wire.ApiError)
    async def _api_error(request: Request, err: wire.ApiError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException):
        message = f"There is no {request.method} {request.url.path} here: this server's endpoints are listed at /docs."
        code = "not_found" if err.status_code == 404 else "method_not_allowed" if err.status_code == 405 else None
        return JSONResponse(wire.ApiError(err.status_code, message, code=code).body(), status_code=err.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception):
        logger.exception("Request failed: %s %s", request.method, request.url.path)
        body = wire.ApiError(500, "Something went wrong on the server; the request was not completed.", "server_error")
        return JSONResponse(body.body(), status_code=500)

    def check_key(request: Request) -> None:
        header = request.headers.get("authorization") or ""
        if api_key and not hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), api_key.encode()):
            raise wire.ApiError(401, "This server needs an API key: send `Authorization: Bearer <key>`.",
                                code="invalid_api_key")  # fmt: skip

    async def checked(request: Request, model_field: bool = True) -> dict:
        """The request's JSON body, once its key, the model's readiness and the model it names are checked."""
        check_key(request)
        raw = await request.body()
        if len(raw) > wire.MAX_BODY:
            raise wire.ApiError(
                413, f"The request is larger than {wire.MAX_BODY // 2**20} MB.", code="request_too_large"
            )
        try:
            body = json.loads(raw or b"null")
        except ValueError as err:
            raise wire.bad("The request body is not valid JSON.") from err
        if not isinstance(body, dict):
            raise wire.bad("The request body must be a JSON object.")
        asked = body.get("model")
        if model_field and (not isinstance(asked, str) or not asked.strip()):
            raise wire.bad(f"The request needs 'model': '{name}', the model this server serves.", "model")
        if asked is not None and asked != name:
            raise wire.not_here(asked, name)
        if not model.loaded.is_set():
            state = f"failed to load ({model.error})" if model.error else "still loading: retry in a few seconds"
            raise wire.ApiError(503, f"The model is {state}.", "server_error", "model_not_ready")
        return body

    def entry() -> dict:
        return {"id": name, "object": "model", "created": int(meta.get("created_unix", 0)), "owned_by": "you",
                "tasks": meta.get("tasks", []), "description": f"The {kind} model of this server bundle."}  # fmt: skip

    @app.get("/health", tags=["server"])
    async def health():
        if not model.loaded.is_set():
            status = {"status": "error", "error": model.error} if model.error else {"status": "starting"}
            return JSONResponse(status, status_code=503)
        return {"status": "ok"}

    @app.get("/info", tags=["server"])
    async def info():
        return {"name": name, "kind": kind, "api": "openai", "docs": "/docs", "model_id": name,
                "loaded": model.loaded.is_set(), "device": model.device, "dtype": model.dtype,
                "context": model.context, "max_tokens": cap, "max_input_texts": wire.MAX_TEXTS,
                "created": meta.get("created"), **counts}  # fmt: skip

    @app.get("/v1/models", tags=["openai"])
    async def models(request: Request):
        check_key(request)
        return {"object": "list", "data": [entry()]}

    @app.get("/v1/models/{model_id:path}", tags=["openai"])
    async def one_model(model_id: str, request: Request):
        check_key(request)
        if model_id != name:
            raise wire.not_here(model_id, name)
        return entry()

    if kind == "chat":
        add_generation_routes(app, model, name, cap, checked, count)

    if kind == "embeddings":

        @app.post("/v1/embeddings", tags=["openai"])
        async def embeddings(request: Request):
            body = await checked(request)
            texts = wire.texts(body.get("input"), "input")
            encoding = body.get("encoding_format") or "float"
            if encoding not in ("float", "base64"):
                raise wire.bad("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
            if body.get("dimensions") is not None:
                raise wire.bad("'dimensions' is not supported: this model has a fixed size.", "dimensions")
            rows = await run_in_threadpool(model.embed, texts)
            data = [{"object": "embedding", "index": i, "embedding": row if encoding == "float" else
                     base64.b64encode(struct.pack(f"<{len(row)}f", *row)).decode("ascii")}
                    for i, row in enumerate(rows)]  # fmt: skip
            tokens = await run_in_threadpool(model.count_tokens, texts)
            return {"object": "list", "data": data, "model": name,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip

        @app.post("/rerank", tags=["text-embeddings-inference"])
        async def rerank(request: Request):
            body = await checked(request, model_field=False)
            query = body.get("query")
            if not isinstance(query, str) or not query.strip():
                raise wire.bad("The request needs 'query': a text.", "query")
            texts = wire.texts(body.get("texts"), "texts")
            rows = await run_in_threadpool(model.embed, [query, *texts], True)  # cosine: normalised vectors
            scores = [sum(a * b for a, b in zip(rows[0], row, strict=True)) for row in rows[1:]]
            ranked = sorted(range(len(texts)), key=lambda i: -scores[i])
            keep = bool(body.get("return_text"))
            return [{"index": i, "score": scores[i], **({"text": texts[i]} if keep else {})} for i in ranked]

    if kind == "classification":

        @app.post("/predict", tags=["text-embeddings-inference"])
        async def predict(request: Request):
            body = await checked(request, model_field=False)
            inputs = body.get("inputs")
            rows = await run_in_threadpool(model.classify, wire.texts(inputs, "inputs"))
            return rows[0] if isinstance(inputs, str) else rows

    return app


def add_generation_routes(app: FastAPI, model: engine.Engine, name: str, cap: int, checked, count) -> None:
    """`/v1/chat/completions` and `/v1/completions`. Each generation runs in its own thread, feeding the request's
    queue; a stream closed by its client (or a client gone from a plain request) sets the generation's `halt`."""

    def prepare(gen: dict) -> None:  # slow (tokenizing): off the event loop
        if gen["chat"] and not model.has_chat_template:
            raise wire.bad(f"'{name}' has no chat template: use /v1/completions for it.", "model")
        gen["ids"] = model.encode(gen["prompt"], gen["chat"])
        gen["prompt_tokens"] = int(gen["ids"].shape[1])
        if gen["prompt_tokens"] + gen["max_tokens"] > model.context:
            raise wire.ApiError(
                413, f"This model reads at most {model.context} tokens; the prompt has {gen['prompt_tokens']} and "
                f"{gen['max_tokens']} more were asked for. Shorten the prompt or lower max_tokens.",
                code="context_length_exceeded", param="messages",
            )  # fmt: skip

    def start(gen: dict, halt: threading.Event) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the server's loop is gone: nobody listens
                halt.set()

        def pump() -> None:
            try:
                for piece in wire.deltas(model, gen, halt):
                    put(("piece", piece))
                put(("end", None))
            except Exception as err:
                logger.exception("A generation failed")
                put(("error", wire.ApiError(500, f"The generation failed: {type(err).__name__}.", "server_error")))
            finally:
                count("active_generations", -1)

        count("active_generations", 1)
        threading.Thread(target=pump, name="bundle-pump", daemon=True).start()
        return queue

    async def next_item(queue: asyncio.Queue, request: Request, halt: threading.Event):
        """The next piece, checking twice a second that the client is still there (else: halt, and None)."""
        while True:
            try:
                return await asyncio.wait_for(queue.get(), timeout=0.5)
            except TimeoutError:
                if await request.is_disconnected():
                    halt.set()
                    return None

    async def events(gen: dict, halt: threading.Event, request: Request) -> AsyncIterator[str]:
        queue, ended = start(gen, halt), False
        try:
            yield wire.sse(wire.chunk(gen, name, first=True))
            while (item := await next_item(queue, request, halt)) is not None:
                kind, value = item
                if kind == "error":
                    yield wire.sse(value.body())
                    break
                if kind == "end":
                    yield wire.sse(wire.chunk(gen, name, finish=True))
                    if gen["include_usage"]:
                        yield wire.sse({**wire.head(gen, name, True), "choices": [], "usage": wire.usage(gen)})
                    break
                yield wire.sse(wire.chunk(gen, name, value))
            ended = item is not None
            yield "data: [DONE]\n\n"
        finally:
            if not ended:  # the client went away mid-stream: the generation ends after its current token
                count("cancelled_generations", 1)
            halt.set()

    async def completion(request: Request, chat: bool):
        gen = wire.parse_generation(await checked(request), chat, cap)
        await run_in_threadpool(prepare, gen)
        halt = threading.Event()
        if gen["stream"]:
            return StreamingResponse(events(gen, halt, request), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})  # fmt: skip
        queue, pieces = start(gen, halt), []
        try:
            while (item := await next_item(queue, request, halt)) is not None:
                if item[0] == "error":
                    raise item[1]
                if item[0] == "end":
                    return wire.answer(gen, name, "".join(pieces))
                pieces.append(item[1])
            count("cancelled_generations", 1)
            raise wire.ApiError(499, "The client closed the request.")
        finally:
            halt.set()

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(request: Request):
        return await completion(request, True)

    @app.post("/v1/completions", tags=["openai"])
    async def completions(request: Request):
        return await completion(request, False)


app = create_app() if (HERE / "bundle.json").is_file() else None  # None inside the playground: no bundle here
