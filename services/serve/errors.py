"""Errors in OpenAI's JSON shape, `{"error": {"message", "type", "code", "param"}}`, with the status clients expect.

Every refusal the services layer can raise (a `PlaygroundError` with its sentence) maps to one status here, so the
REST API never answers with a traceback: 400 a bad request, 401 a missing or wrong key, 404 a model the caller
may not use (another visitor's looks exactly like one that does not exist; so does a Hub model while offline),
413 a prompt longer than the model reads, 422 a setting above its cap (the sentence names the cap), 429 a server
that is saturated.
"""

from __future__ import annotations

from services.core.errors import AccessDenied, ModelNotFound, ModelUnavailable, PlaygroundError, TaskMismatch
from services.core.limits import LimitExceeded


class ApiError(Exception):
    """An error answered to an API client: HTTP status, OpenAI error type and code, one sentence."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, code=code, param=param)


def model_not_found(model: str) -> ApiError:
    shown = model if len(model) <= 120 else model[:117] + "..."
    return ApiError(
        404, f"The model '{shown}' does not exist here, or you do not have access to it. GET /v1/models lists yours.",
        code="model_not_found", param="model",
    )  # fmt: skip


def from_playground(err: PlaygroundError, model: str | None = None) -> ApiError:
    """The API's answer for a refusal of the services layer (its sentence is already written for people)."""
    if isinstance(err, ModelNotFound | AccessDenied):
        return model_not_found(model or "")
    if isinstance(err, ModelUnavailable):  # offline, or not downloaded: retrying will not help, so not a 503
        return ApiError(404, str(err), code="model_not_found", param="model")
    if isinstance(err, TaskMismatch):
        return ApiError(400, str(err), code="model_task_mismatch", param="model")
    if isinstance(err, LimitExceeded):
        return ApiError(422, str(err), code="limit_exceeded")
    return ApiError(400, str(err))
