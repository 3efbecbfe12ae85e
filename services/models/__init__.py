"""Which models exist and how they are loaded: the catalog, the resolver, the model cache, packaged models.

`catalog` (packaged, Hub and trained-here models; `resolve` turns an id into a checked location), `loading` (one
cached copy per model and device), `packs` (the models shipped as pip packages, converted once for offline use),
`packaged_adapters` (the adapters shipped in assets/adapters/: minilm-sentiment, minilm-ner, grounded-answers).
Exports `resolve`, `ResolvedModel` and `ModelEntry`.
"""

from services.models.catalog import ModelEntry, ResolvedModel, resolve

__all__ = ["ModelEntry", "ResolvedModel", "resolve"]
