"""The Hugging Face Hub: pushing folders, model and dataset cards, Spaces.

`push` is the only module that calls `HfApi` (repo checks, tokens, retries, uploads); `cards` writes README cards for
models, tokenizers and collections; `spaces` builds and pushes a demo Space. Exports `PushError`.
"""

from services.hub.push import PushError

__all__ = ["PushError"]
