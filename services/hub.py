"""The only module that talks to the Hugging Face Hub.

For now: repo-id checks, the local HF cache, and whether a model exists. Pushing, auth and model cards arrive
with the Hub issue. Every call degrades gracefully offline.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

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

    from services.config import get_settings

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


def model_file(repo_id: str, filename: str) -> Path | None:
    """One file of a Hub model (from the local cache, else downloaded when online), or None if it has none."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from services.config import get_settings

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
