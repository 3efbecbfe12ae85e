"""Tokenizers: how WordPiece, BPE and Unigram cut text, compared, decoded, trained.

`analysis` (tokens with offsets and the stages of the pipeline), `loading` (open any tokenizer, cached), `tools`
(batch encoding, vocabulary, chat templates, decode), `roundtrip` (what decoding gives back), `training` and
`corpus` (train a tokenizer on a corpus), `jobs` (training as a background job), `bytes` (byte-level pieces shown
as text). Exports `tokenize`, `analyze` and `open_tokenizer`:

    from services import tokenizers
    tokenizers.tokenize("all-minilm-l6-v2", "Hello world", add_special_tokens=True)
"""

from services.tokenizers.analysis import analyze, open_tokenizer, tokenize

__all__ = ["analyze", "open_tokenizer", "tokenize"]
