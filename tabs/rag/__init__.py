"""The RAG chat tab: collections, documents, a cited chat and the retrieval inspector. `tab` builds it; `view`
(sources and inspector HTML) beside it. Exports `build`.
"""

from tabs.rag.tab import build

__all__ = ["build"]
