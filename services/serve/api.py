"""The REST API: OpenAI's wire format (and text-embeddings-inference's) on the app's own port, documented at /docs.

    GET  /v1/models, /v1/models/{id}      the models the caller may use
    POST /v1/chat/completions             chat, streamed as server-sent events ending in `data: [DONE]`, or not
    POST /v1/completions                  plain text continuation, the same way
    POST /v1/embeddings                   sentence vectors (floats or base64), micro-batched across clients
    POST /predict, /rerank                text-embeddings-inference's classification and rerank
    GET  /health, /info                   503 until the server can answer; what it serves and its caps

`RestApi(app)` is an ASGI middleware: it sends these paths to this FastAPI app and everything else to Gradio, so
one port serves both (a Space exposes one). Every error is OpenAI's JSON shape (`services.serve.errors`); the
caller is read from the bearer key (`services.serve.auth`). A streamed generation runs in its own thread; when
the client goes away its `halt` is set and the generation ends after the current token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.serve import auth, encoders, generate
from services.serve.errors import ApiError, bad_request, from_playground, model_not_found

logger = logging.getLogger(__name__)

API_PATHS = ("/v1/", "/health", "/info", "/predict", "/rerank", "/docs", "/openapi.json")
_MAX_BODY = 8 * 2**20


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class Admission:
    """Generations admitted at once (running or waiting for the model): past the cap, 429 at once instead of a
    queue that grows without end. On a Space each caller also has a cap of their own, so one cannot take all."""

    def __init__(self, total: int, per_owner: int) -> None:
        self.total, self.per_owner = total, per_owner
        self.lock = threading.Lock()
        self.owners: Counter[str] = Counter()

    def enter(self, owner: str) -> None:
        with self.lock:
            if sum(self.owners.values()) >= self.total:
                raise ApiError(429, f"The server is answering {self.total} requests already: retry in a few seconds.",
                               type_="rate_limit_error", code="server_busy")  # fmt: skip
            if self.owners[owner] >= self.per_owner:
                raise ApiError(429, f"You have {self.per_owner} generations going, the most one caller may have "
                               "at once: wait for one to end.", "rate_limit_error", "rate_limit_exceeded")  # fmt: skip
            self.owners[owner] += 1

    def leave(self, owner: str) -> None:
        with self.lock:
            self.owners[owner] -= 1
            if self.owners[owner] <= 0:
                del self.owners[owner]


def _admission() -> Admission:
    per_owner = _int_env("PLAYGROUND_API_PER_CALLER", 4 if get_settings().on_space else 64)
    return Admission(_int_env("PLAYGROUND_API_QUEUE", 64), per_owner)


def create_api(ready: Callable[[], bool] = lambda: True, default_model: str | None = None):
    """The FastAPI app. `ready`: whether the server can answer now (`/health`); `default_model`: the model
    `/predict` and `/rerank` use when a request names none (the server bundle serves one model)."""
    api = FastAPI(title="HF Playground API", version="1.0",
                  description="OpenAI-compatible chat, completions and embeddings, and text-embeddings-inference's "
                  "/predict and /rerank, for every model of the playground.")  # fmt: skip
    admission = _admission()

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        headers = {"retry-after": "5"} if err.status == 429 else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @api.exception_handler(Exception)
    async def _bug(request: Request, err: Exception):
        logger.exception("REST API request failed: %s %s", request.method, request.url.path)
        body = ApiError(500, "Something went wrong on the server; the request was not completed.", "server_error")
        return JSONResponse(body.body(), status_code=500)

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise ApiError(413, f"The request is larger than {_MAX_BODY // 2**20} MB.", code="request_too_large")
        try:
            body = json.loads(raw or b"null")
        except ValueError as err:
            raise bad_request("The request body is not valid JSON.") from err
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return body

    def caller(request: Request) -> str:
        try:
            return auth.caller(request.headers.get("authorization")).owner
        except auth.Unauthorized as err:
            raise ApiError(401, str(err), code="invalid_api_key") from err

    @api.get("/health", tags=["server"])
    async def health():
        if not ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return {"status": "ok"}

    @api.get("/info", tags=["server"])
    async def info():
        from services.core.limits import get_limits

        limits = get_limits()
        return {"name": "HF Playground", "api": "openai", "model_id": default_model, "docs": "/docs",
                "max_tokens": limits.new_tokens, "max_input_texts": encoders.MAX_TEXTS,
                "max_concurrent_requests": admission.total, "max_batch_texts": encoders.BATCH_TEXTS,
                "device": get_settings().device}  # fmt: skip

    @api.get("/v1/models", tags=["openai"])
    async def models(request: Request):
        owner = caller(request)
        entries = await run_in_threadpool(_listing, owner)
        return {"object": "list", "data": entries}

    @api.get("/v1/models/{model_id:path}", tags=["openai"])
    async def model(model_id: str, request: Request):
        owner = caller(request)
        for entry in await run_in_threadpool(_listing, owner):
            if entry["id"] == model_id:
                return entry
        raise model_not_found(model_id)

    async def completion(request: Request, kind: str):
        owner = caller(request)
        gen = generate.parse(await body_of(request), kind)
        admission.enter(owner)
        try:
            await run_in_threadpool(generate.prepare, gen, owner)
        except BaseException:
            admission.leave(owner)
            raise
        halt = threading.Event()
        if gen.stream:
            events = _events(gen, halt, request, lambda: admission.leave(owner))
            return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        try:
            text = await _whole(gen, halt, request)
        finally:
            admission.leave(owner)
        return generate.response(gen, text)

    @api.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(request: Request):
        return await completion(request, "chat.completion")

    @api.post("/v1/completions", tags=["openai"])
    async def completions(request: Request):
        return await completion(request, "text_completion")

    @api.post("/v1/embeddings", tags=["openai"])
    async def embeddings(request: Request):
        owner = caller(request)
        # Plain JSON already: a JSONResponse skips FastAPI's jsonable_encoder walk over every number of every vector.
        return JSONResponse(await run_in_threadpool(encoders.embeddings, await body_of(request), owner))

    @api.post("/predict", tags=["text-embeddings-inference"])
    async def predict(request: Request):
        owner = caller(request)
        return await run_in_threadpool(encoders.predict, await body_of(request), owner, default_model)

    @api.post("/rerank", tags=["text-embeddings-inference"])
    async def rerank(request: Request):
        owner = caller(request)
        return await run_in_threadpool(encoders.rerank, await body_of(request), owner, default_model)

    return api


def _listing(owner: str) -> list[dict]:
    """OpenAI's model objects for what the caller may use, with the playground's tasks beside them."""
    from services.models.catalog import catalog

    return [{"id": e.id, "object": "model", "created": 0, "owned_by": "you" if e.source == "trained" else e.source,
             "tasks": list(e.tasks), "description": e.description}
            for e in catalog(owner=owner, available_only=True)]  # fmt: skip


def _pump(gen: generate.Generation, halt: threading.Event, loop, queue: asyncio.Queue, done: Callable) -> None:
    """The generation's own thread: each piece goes to the request's queue; it ends on halt, and always frees its
    admission (a client gone mid-stream must not keep a place)."""

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the server's loop is gone: nobody is listening
            halt.set()

    try:
        for piece in generate.deltas(gen, halt):
            put(("piece", piece))
        put(("end", None))
    except ApiError as err:
        put(("error", err))
    except PlaygroundError as err:
        put(("error", from_playground(err, gen.model)))
    except Exception as err:
        logger.exception("A streamed generation failed")
        put(("error", ApiError(500, f"The generation failed: {type(err).__name__}.", "server_error")))
    finally:
        done()


def _start(gen: generate.Generation, halt: threading.Event, done: Callable) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_pump, args=(gen, halt, loop, queue, done), name="api-generate", daemon=True).start()
    return queue


async def _next(queue: asyncio.Queue, request, halt: threading.Event):
    """The next item, checking twice a second that the client is still there (else: halt, and None)."""
    while True:
        try:
            return await asyncio.wait_for(queue.get(), timeout=0.5)
        except TimeoutError:
            if await request.is_disconnected():
                halt.set()
                return None


async def _whole(gen: generate.Generation, halt: threading.Event, request) -> str:
    finished = threading.Event()
    queue = _start(gen, halt, finished.set)
    pieces = []
    try:
        while True:
            item = await _next(queue, request, halt)
            if item is None:
                raise ApiError(499, "The client closed the request.")
            kind, value = item
            if kind == "error":
                raise value
            if kind == "end":
                return "".join(pieces)
            pieces.append(value)
    finally:
        halt.set()  # a cancelled request (client gone) ends its generation too
        await asyncio.to_thread(finished.wait, 30)


def _sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _events(gen: generate.Generation, halt: threading.Event, request, leave: Callable) -> AsyncIterator[str]:
    queue = _start(gen, halt, leave)
    try:
        yield _sse(generate.chunk(gen, first=True))
        while True:
            item = await _next(queue, request, halt)
            if item is None:
                return
            kind, value = item
            if kind == "error":
                yield _sse(value.body())
                break
            if kind == "end":
                yield _sse(generate.chunk(gen, finish=True))
                if gen.include_usage:
                    yield _sse(generate.usage_chunk(gen))
                break
            yield _sse(generate.chunk(gen, value))
        yield "data: [DONE]\n\n"
    finally:
        halt.set()  # the stream was closed (the client went away): the generation ends after this token


class RestApi:
    """ASGI middleware: the API's paths go to the REST API, everything else to the app it wraps (Gradio)."""

    api = None
    _lock = threading.Lock()

    def __init__(self, app, ready: Callable[[], bool] = lambda: True) -> None:
        self.app, self.ready = app, ready

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith(API_PATHS):
            return await self._api()(scope, receive, send)
        return await self.app(scope, receive, send)

    def _api(self):
        with RestApi._lock:
            if RestApi.api is None:
                RestApi.api = create_api(self.ready)
        return RestApi.api
