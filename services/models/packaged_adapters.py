"""Task adapters shipped in the repository: LoRA adapters on the packaged MiniLM, so that a visitor with no Hub
access still gets a sentiment and an NER model in Pipelines, and one on the packaged SmolLM2 (`grounded-answers`),
RAG chat's default answering model, which copies the fact from the sentence it reads. A third MiniLM one,
`minilm-answerable`, tells RAG chat which retrieved sentence answers the question (services.rag.answerable).

Each lives in ``assets/adapters/<id>/``: the adapter (``adapter_config.json`` naming its base by the packaged
model's Hub twin, never a path; ``adapter_model.safetensors`` with the classifier head), a ``config.json`` with the
label names, ``metrics.json`` (the held-out and held-back test figures), the card and the ``job.yaml`` that trained
it (``python tools/make_task_adapters.py`` retrains them). The folder is an adapter like any other:
`services.models.adapters` resolves it with its base and loading puts it on the base with peft; this module only
says which ids are packaged adapters, where their folders are and how the catalog describes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.core.config import PROJECT_ROOT

ADAPTERS_DIR = PROJECT_ROOT / "assets" / "adapters"
# The test figure that sums each task up, and how the catalog line names it.
_HEADLINE = {
    "text-classification": ("accuracy", "accuracy", "on the held-back test split"),
    "token-classification": ("f1", "entity F1", "on the held-back test split"),
    "text-generation": ("facts", "right facts in RAG chat's answers", "on bench/rag_eval"),
}


@dataclass(frozen=True)
class PackagedAdapter:
    id: str
    task: str  # the catalog task it does
    base: str  # the packaged model it adapts
    summary: str  # what it does, in a catalog line

    @property
    def folder(self) -> Path:
        return ADAPTERS_DIR / self.id

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.task,)

    def metrics(self) -> dict:
        """What `metrics.json` holds ({} when it cannot be read): `test` and `eval` figures, labels, rows."""
        try:
            data = json.loads((self.folder / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def description(self) -> str:
        """The catalog line: what it does, on which base and data, and its held-back test figure."""
        name, shown, where = _HEADLINE[self.task]
        value = (self.metrics().get("test") or {}).get(name)
        figure = f"; {shown} {value:.1%} {where}".replace("%", " %") if value else ""
        return f"{self.summary} A LoRA adapter on {self.base}, trained on the bundled sample{figure}."


ADAPTERS: dict[str, PackagedAdapter] = {
    a.id: a
    for a in (
        PackagedAdapter(
            id="minilm-sentiment",
            task="text-classification",
            base="all-minilm-l6-v2",
            summary="Sentiment of English text: positive or negative.",
        ),
        PackagedAdapter(
            id="minilm-ner",
            task="token-classification",
            base="all-minilm-l6-v2",
            summary="Named entities in English text: persons (PER), organisations (ORG), places (LOC), other (MISC).",
        ),
        PackagedAdapter(
            id="grounded-answers",
            task="text-generation",
            base="smollm2-135m-instruct",
            summary="RAG chat's answering model: answers a question from the one numbered sentence it is shown, "
            "copying the fact and citing it as [n].",
        ),
        PackagedAdapter(
            id="minilm-answerable",
            task="text-classification",
            base="all-minilm-l6-v2",
            summary='Whether a sentence answers a question ("question [SEP] sentence"): answers or does not. '
            "RAG chat reads the sentences it most likely answers from first.",
        ),
    )
}
