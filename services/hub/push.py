"""Talks to the Hugging Face Hub: with `services.hub.jobs` (Hugging Face Jobs), the only caller of `HfApi`.

Reads: repo-id checks, the local HF cache, whether a model exists; every read degrades gracefully offline.
Pushing: `push()` checks the folder (it exists, holds something, and holds no secrets such as a token file or an
`.env`), checks the repo id and the token, creates the repo (or a branch) when needed, uploads the folder in one
commit and returns the repo URL and the commit id. Transient failures (network, 5xx, 429) are retried with backoff;
permanent ones (no token, a read-only or expired token, someone else's namespace) become one plain sentence. The
token is passed to `huggingface_hub` only: it is never logged, stored or written into the pushed files.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import AccessDenied, PlaygroundError
from services.core.redact import mask

logger = logging.getLogger(__name__)


def is_valid_repo_id(repo_id: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return False
    return True


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of a model already in the local HF cache, or None (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    if not is_valid_repo_id(repo_id):
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


@functools.lru_cache(maxsize=256)
def model_exists(repo_id: str) -> bool:
    """Whether the Hub has a model repo with this id that we may read (cached per process)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    from services.core.config import get_settings

    # On a Space, never answer a visitor with the Space's own token (it may see private repos).
    token = False if get_settings().on_space else None
    try:
        HfApi(token=token).model_info(repo_id, timeout=10)
    except GatedRepoError:
        return True  # it exists; loading will explain that access must be requested
    except RepositoryNotFoundError:
        return False
    except Exception as err:  # network trouble: let the download report it
        logger.warning("Could not check %s on the Hub: %s", repo_id, err)
        return True
    return True


@functools.lru_cache(maxsize=256)
def weights_bytes(repo_id: str) -> int | None:
    """The size of a Hub model's weights (its top-level safetensors files, else its pickles) from the Hub's file
    list, before anything is downloaded; None when the Hub does not say."""
    from huggingface_hub import HfApi

    token = False if get_settings().on_space else None
    try:
        info = HfApi(token=token).model_info(repo_id, files_metadata=True, timeout=10)
    except Exception as err:  # unknown: the download itself will explain what is wrong
        logger.warning("Could not read the file sizes of %s: %s", repo_id, err)
        return None
    files = [(s.rfilename, s.size or 0) for s in info.siblings or [] if "/" not in s.rfilename]
    for suffixes in ((".safetensors",), (".bin", ".pt", ".pth")):
        total = sum(size for name, size in files if name.endswith(suffixes))
        if total:
            return total
    return None


def model_file(repo_id: str, filename: str) -> Path | None:
    """One file of a Hub model (from the local cache, else downloaded when online), or None if it has none."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from services.core.config import get_settings

    cached = try_to_load_from_cache(repo_id, filename)
    if isinstance(cached, str):
        return Path(cached)
    settings = get_settings()
    if settings.offline:
        return None
    try:
        return Path(hf_hub_download(repo_id, filename, token=False if settings.on_space else None))
    except Exception as err:  # most models have no such file; that is an answer, not an error
        logger.debug("%s has no %s: %s", repo_id, filename, err)
        return None


# ---- pushing ---------------------------------------------------------------------------------------------------

REPO_TYPES = ("model", "dataset", "space")
# File names that hold credentials; a folder with any of them is refused, never silently filtered.
SECRET_NAMES = (
    "token",
    "stored_tokens",
    ".env",
    ".env.*",
    ".netrc",
    ".git-credentials",
    "credentials",
    "credentials.json",
    "id_rsa",
    "id_ed25519",
    "*.pem",
    "*.key",
)
_SCAN_BYTES = 1 << 20  # text files up to 1 MB are scanned for a pasted token
_RETRIES = 3


class PushError(PlaygroundError):
    """A push that could not be done, said in words; nothing on disk was touched."""


def _env_token() -> str:
    return (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or "").strip()


def has_env_token() -> bool:
    """Whether pushes without a typed token can use HF_TOKEN (locally only: a Space's own token is never lent)."""
    return bool(_env_token()) and not get_settings().on_space


def resolve_token(token: str | None) -> str:
    """The token to push with: the caller's (OAuth or typed), else HF_TOKEN locally; never the Space's own."""
    token = (token or "").strip()
    if not token and has_env_token():
        token = _env_token()
    if not token:
        raise PushError(
            "Pushing needs a Hugging Face token: sign in with Hugging Face, type a token with write access, or set "
            "HF_TOKEN."
        )
    return token


def whoami(token: str) -> str | None:
    """The Hub user a token belongs to, or None when the Hub refuses it (or cannot be reached)."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().whoami(token=token)
    except Exception as err:  # a wrong or expired token, or the Hub is down: either way, not this user
        logger.info("A token was not accepted by the Hub: %s", mask(str(err))[:200])
        return None
    name = info.get("name") if isinstance(info, dict) else None
    return name if isinstance(name, str) and name else None


def check_folder(path: str | Path) -> list[Path]:
    """The files to push; refuses a missing or empty folder and any folder holding secrets."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise PushError(f"There is nothing at '{folder}' to push.")
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    files = [p for p in files if ".git" not in p.relative_to(folder if folder.is_dir() else folder.parent).parts]
    if not files or sum(p.stat().st_size for p in files) == 0:
        raise PushError(f"'{folder.name}' is empty: there is nothing to push.")
    for p in files:
        if any(fnmatch.fnmatch(p.name.lower(), pattern) for pattern in SECRET_NAMES):
            raise PushError(
                f"'{p.name}' looks like a file of secrets (a token, keys or credentials), so the folder is not "
                "pushed. Move it out of the folder and push again."
            )
        if p.stat().st_size <= _SCAN_BYTES:
            text = p.read_bytes().decode("utf-8", "ignore")
            if mask(text) != text:
                raise PushError(
                    f"'{p.name}' contains what looks like a Hugging Face token (hf_...), so the folder is not pushed."
                )
    return files


def _explain(err: Exception, repo_id: str) -> PlaygroundError | None:
    """A sentence for a permanent failure, or None when the error is worth retrying."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(err, OfflineModeIsEnabled):
        return PushError("The playground is offline (HF_HUB_OFFLINE=1): pushing needs the Hub. Nothing was changed.")
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, RepositoryNotFoundError) or status == 404:
        return PushError(f"The Hub has no repo '{repo_id}' that this token can see.")
    if status == 401:
        return AccessDenied("The Hub refused the token: it is wrong or has expired. Sign in again or make a new one.")
    if status == 403:
        return AccessDenied(
            f"This token cannot write to '{repo_id}': it is read-only, or the namespace '{repo_id.split('/')[0]}' is "
            "not yours (or one of your organisations')."
        )
    if status == 409:
        return PushError(f"The name '{repo_id}' is already taken. Pick another name.")
    if status in (400, 413, 422):
        return PushError(f"The Hub refused this push ({status}): {mask(str(err)).splitlines()[0]}")
    if isinstance(err, HfHubHTTPError) and status is not None and status < 500 and status != 429:
        return PushError(f"The Hub refused this push ({status}).")
    return None


def _with_retries(action: Callable, repo_id: str, what: str, progress: Callable[[float, str], None]):
    delay = 1.0
    for attempt in range(1, _RETRIES + 1):
        try:
            return action()
        except PlaygroundError:
            raise
        except Exception as err:
            permanent = _explain(err, repo_id)
            if permanent is not None:
                raise permanent from err
            logger.warning("%s on the Hub failed (try %d of %d): %s", what, attempt, _RETRIES, mask(str(err)))
            if attempt == _RETRIES:
                raise PushError(
                    f"{what} failed {_RETRIES} times ({type(err).__name__}): the Hub may be down or unreachable. "
                    "Everything is still on disk; try again later."
                ) from err
            progress(0.0, f"{what} failed, trying again in {delay:.0f} s")
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _space_sdk(folder: Path) -> str:
    """A Space's SDK as its README's front matter says (the server bundle is a Docker Space), else gradio."""
    readme = folder / "README.md" if folder.is_dir() else None
    head = readme.read_text(errors="replace")[:2000] if readme and readme.is_file() else ""
    return "docker" if "\nsdk: docker" in head else "gradio"


def push(
    path: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
    tag: str | None = None,
    new_repo: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Push a folder (or one file) to `repo_id` in one commit; returns ``{"url", "commit", ...}``.

    `revision` names a branch (made from main when new); `tag` marks the new commit; `new_repo=True` refuses to
    write into a repo that already exists (a demo Space must not overwrite someone's Space)."""
    from huggingface_hub import HfApi

    progress = progress or (lambda f, m: None)
    repo_id = (repo_id or "").strip()
    if repo_type not in REPO_TYPES:
        raise PushError(f"The repo type must be one of {', '.join(REPO_TYPES)}, not '{repo_type}'.")
    if "/" not in repo_id or not is_valid_repo_id(repo_id):
        raise PushError(
            f"'{repo_id}' is not a repo name: use NAMESPACE/NAME with letters, digits, '-', '_' or '.', "
            "such as 'alice/my-model'."
        )
    files = check_folder(path)
    token = resolve_token(token)
    api = HfApi(token=token)
    folder = Path(path).expanduser()
    progress(0.05, f"Creating {repo_id} if it does not exist")
    _with_retries(
        lambda: api.create_repo(
            repo_id,
            repo_type=repo_type,
            private=private,
            exist_ok=not new_repo,
            space_sdk=_space_sdk(folder) if repo_type == "space" else None,
        ),
        repo_id,
        "Creating the repo",
        progress,
    )
    if revision and revision != "main":
        _with_retries(
            lambda: api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True),
            repo_id,
            "Creating the branch",
            progress,
        )
    size = sum(p.stat().st_size for p in files)
    progress(0.2, f"Uploading {len(files)} file(s), {size / 2**20:.1f} MB")
    commit_message = (message or "").strip() or "Upload from HF Playground"
    if folder.is_file():
        upload = lambda: api.upload_file(  # noqa: E731
            path_or_fileobj=str(folder),
            path_in_repo=folder.name,
            repo_id=repo_id,
            repo_type=repo_type,
            revision=revision,
            commit_message=commit_message,
        )
    else:
        upload = lambda: api.upload_folder(  # noqa: E731
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            revision=revision,
            commit_message=commit_message,
            ignore_patterns=[".git/*", "**/.git/*"],
        )
    info = _with_retries(upload, repo_id, "Uploading", progress)
    if tag:
        commit = getattr(info, "oid", None)
        try:
            _with_retries(
                lambda: api.create_tag(repo_id, tag=tag, revision=commit, repo_type=repo_type, tag_message=message),
                repo_id,
                "Tagging",
                progress,
            )
        except PushError as err:
            if "already taken" not in str(err):
                raise
            raise PushError(f"The files were pushed, but the tag '{tag}' already exists in {repo_id}.") from err
    progress(1.0, f"Pushed to {repo_id}")
    url = (
        str(getattr(info, "repo_url", "") or "")
        or f"{api.endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
    )
    return {
        "url": url,
        "commit": getattr(info, "oid", None),
        "commit_url": getattr(info, "commit_url", None),
        "repo_id": repo_id,
        "repo_type": repo_type,
        "revision": revision or "main",
        "tag": tag,
        "files": len(files),
    }
