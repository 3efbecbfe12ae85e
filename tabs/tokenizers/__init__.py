"""The Tokenizers tab: see how a tokenizer cuts text, compare, decode, train one. `tab` builds it; `view`
(the coloured token HTML) and `train` (the training panel) beside it. Exports `build`.
"""

from tabs.tokenizers.tab import build

__all__ = ["build"]
