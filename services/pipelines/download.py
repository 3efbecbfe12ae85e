"""A model trained here, as a zip its owner can download and load with transformers alone.

The zip holds one folder named like the model (`<name>/config.json`, weights, tokenizer, model card, metrics), so
`pipeline(task, model="./<name>")` works after unzipping. What only the training needed, or what names server
paths, stays behind: checkpoints, the job's config and event log, the run's record.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from services.core.errors import PlaygroundError
from services.models import catalog as models

# Top-level entries of a trained model's folder that are not part of the model.
LEFT_OUT = frozenset({"checkpoints", "job.yaml", "events.jsonl", "playground-model.json"})


def trained_zip(model_id: str, owner: str | None) -> Path:
    """Zip the caller's own `trained:<name>` model into a private temporary folder; return the zip's path.

    Another visitor's model reads exactly like a missing one (the resolver's sentence)."""
    model_id = (model_id or "").strip()
    if not model_id.startswith(models.TRAINED_PREFIX):
        raise PlaygroundError(
            "Only models trained here (trained:<name>) can be downloaded. Hub models are on the Hub already, and "
            "the packaged models ship with the playground."
        )
    folder = Path(models.resolve(model_id, owner).location)
    name = folder.name
    out = Path(tempfile.mkdtemp(prefix="playground-model-")) / f"{name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if relative.parts[0] in LEFT_OUT or path.is_symlink() or not path.is_file():
                continue
            archive.write(path, f"{name}/{relative.as_posix()}")
    return out
