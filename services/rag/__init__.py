"""RAG chat: documents in, hybrid retrieval, cited streamed answers.

`ingest` (files and datasets into a collection, as a job), `extract` (text out of PDF, DOCX, HTML, zips; bounded),
`chunk` (text into passages), `store` (a collection on disk), `vectors` (its embeddings), `index` (BM25 and FAISS
over a collection), `history` (chats per owner), `answer` (retrieve, build the prompt, stream a cited answer).
Exports `ask` and `retrieve`.
"""

from services.rag.answer import ask, retrieve

__all__ = ["ask", "retrieve"]
