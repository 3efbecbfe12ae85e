"""The ground floor: settings, errors, owners, caps, safety checks, redaction, the machine, uploads.

Everything else in `services` stands on these modules; they import nothing else of `services`. `config` (settings
from the environment), `errors` (the sentences users see), `owners` (per-visitor folders), `limits` (every cap and
quota), `safety` (remote code, pickle, YAML), `redact` (tokens and paths out of logs), `system` (CPU/GPU/memory),
`uploads` (the caller's own files only). Exports `PlaygroundError` and `get_settings`.
"""

from services.core.config import get_settings
from services.core.errors import PlaygroundError

__all__ = ["PlaygroundError", "get_settings"]
