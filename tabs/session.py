"""Who is calling: the owner id every service call is made for, and helpers shared by the tabs.

- Signed in on a Space (Gradio OAuth): ``hf:<username>``; their jobs follow them across devices.
- An anonymous browser: ``anon:<hash of a random cookie>``. The cookie is set on the page itself (HttpOnly),
  so a reload or an app restart re-attaches the visitor to their jobs; nobody can read another's cookie.
- An API client (`gradio_client`) without that cookie: ``session:<hash of its session>``.
"""

from __future__ import annotations

import hashlib
import html
import inspect
import logging
import secrets
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded, check_count
from services.core.redact import scrub
from services.core.uploads import NOT_YOURS, uploads_root
from tabs.guard import OWNER_COOKIE, penalize

logger = logging.getLogger(__name__)

_ONE_YEAR = 365 * 24 * 3600


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]


def owner_of(request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str:
    """The owner id for this call (see the module docstring)."""
    if profile is not None and getattr(profile, "username", None):
        return f"hf:{profile.username}"
    if request is not None:
        cookies = getattr(request, "cookies", None) or {}
        token = cookies.get(OWNER_COOKIE) if hasattr(cookies, "get") else None
        if token and 20 <= len(token) <= 100:
            return f"anon:{_digest(token)}"
        if request.session_hash:
            return f"session:{_digest(request.session_hash)}"
    raise gr.Error("Your browser session could not be identified. Please reload the page.")


class OwnerCookieMiddleware(BaseHTTPMiddleware):
    """Give each browser a random owner cookie on the page load, so its jobs survive reloads and restarts."""

    def __init__(self, app, secure: bool = False):
        super().__init__(app)
        self.secure = secure

    async def dispatch(self, request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        is_page = request.method == "GET" and request.url.path.rstrip("/") == ""
        if is_page and OWNER_COOKIE not in request.cookies:
            response.headers.append("set-cookie", owner_cookie(secrets.token_urlsafe(32), self.secure))
        return response


def owner_cookie(token: str, secure: bool) -> str:
    """The Set-Cookie value. A Space is shown in an iframe on huggingface.co, where only a secure, partitioned
    (CHIPS) cookie survives; Starlette refuses `partitioned` before Python 3.14, so the header is written here."""
    parts = [f"{OWNER_COOKIE}={token}", f"Max-Age={_ONE_YEAR}", "Path=/", "HttpOnly"]
    parts += ["SameSite=None", "Secure", "Partitioned"] if secure else ["SameSite=Lax"]
    return "; ".join(parts)


def uploaded_paths(files: Any, owner: str) -> list[str]:
    """The files a caller sent with this request (in Gradio's upload folder), or staged earlier (their own), as
    paths. Anything else, a server path typed as text included, is refused with one sentence: no request reads a
    file of the server or of another visitor."""
    from gradio.utils import get_upload_folder

    items = files if isinstance(files, list | tuple) else [files] if files else []
    check_count(items, "files")
    roots = [Path(get_upload_folder()).resolve(), uploads_root(owner).resolve()]
    paths = []
    for item in items:
        raw = (
            item.get("path")
            if isinstance(item, dict)
            else (getattr(item, "path", None) or getattr(item, "name", item))
        )
        if not isinstance(raw, str) or not raw:
            raise gr.Error("Send each file itself, for example with handle_file(...) in gradio_client.")
        real = Path(raw).resolve()
        if not real.is_file() or not any(real.is_relative_to(root) for root in roots):
            raise gr.Error(NOT_YOURS.format(name=Path(raw).name[:100]))
        paths.append(str(real))
    return paths


def _as_user_error(fn: Callable, err: Exception, args: tuple = (), kwargs: dict | None = None) -> gr.Error:
    if isinstance(err, LimitExceeded):  # asking again and again for what one may not have costs allowance
        for value in (*args, *(kwargs or {}).values()):
            if isinstance(value, gr.Request):
                penalize(value)
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, PlaygroundError | ValueError):
        # On a Space the visitor is not the operator: sentences lose server paths and owner ids.
        sentence = scrub(str(err)) if get_settings().on_space else str(err)
        # The page renders an error as HTML: what the visitor typed (or `trained:<name>`) must show as text.
        return gr.Error(html.escape(sentence, quote=False))
    logger.exception("Unexpected error in %s", fn.__name__)
    return gr.Error("Something went wrong on our side. It has been logged; please try again.")


def friendly(fn: Callable) -> Callable:
    """Turn service errors into `gr.Error` sentences, and anything unexpected into a logged, generic one.

    Works for plain functions and for generators (streaming callbacks), whose errors arrive while iterating.
    """
    if inspect.isgeneratorfunction(fn):

        @wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise _as_user_error(fn, err, args, kwargs) from err

        return gen_wrapper

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise _as_user_error(fn, err, args, kwargs) from err

    return wrapper
