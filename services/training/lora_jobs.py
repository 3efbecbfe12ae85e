"""The LoRA tab's jobs besides training (which is `services.training.jobs.start`, as for Fine-tune): merging an
adapter into its base as a child process (``python -m services lora merge``: a full float copy of the base is
loaded, and a failure there must not take the app's memory with it), and what it left.

The merged model goes into the owner's trained models as ``trained:<name>``, with a card that says where it came
from; the adapter itself is never touched.
"""

from __future__ import annotations

import json

from services.core.errors import PlaygroundError
from services.core.owners import safe_name
from services.models.catalog import TRAINED_PREFIX, resolve, trained_root


def start_merge(manager, owner: str, adapter_id: str, name: str) -> str:
    """Check the adapter and the new name now (a sentence at once beats a failed job), then merge as a job."""
    resolved = resolve(adapter_id, owner)
    if resolved.source != "adapter":
        raise PlaygroundError(f"'{adapter_id}' is not a LoRA adapter: there is nothing to merge.")
    clean = safe_name(name or "", "")
    if not clean or clean != (name or "").strip():
        raise PlaygroundError("Name the merged model with letters, digits, '-', '_' or '.' (for example days-merged).")
    out = trained_root(owner) / clean
    if out.exists():
        raise PlaygroundError(f"You already have a model called '{clean}': pick another name (nothing was changed).")
    args = ["lora", "merge", "--owner", owner, "--output", str(out), adapter_id]
    return manager.submit_command(
        "merge", owner, args, title=f"Merge {adapter_id} into {clean}", config={"name": clean, "adapter": adapter_id}
    )


def merge_outputs(manager, job_id: str, owner: str) -> dict:
    """A merge job's state and checks, with the merged model's id once it exists (no server paths)."""
    record = manager.get(job_id, owner)
    result = {k: v for k, v in (record.result or {}).items() if k != "output_dir"}
    name = (record.config or {}).get("name") or ""
    ready = record.status == "succeeded" and (trained_root(owner) / safe_name(name, "model") / "config.json").is_file()
    return {"status": record.status, "error": record.error, **result,
            "model_id": f"{TRAINED_PREFIX}{name}" if ready else None}  # fmt: skip


def write_merged_card(out, adapter_id: str, base: str, result: dict) -> None:
    """A short card for the merged model: what it was merged from, and the checks' figures."""
    lines = [
        "---",
        f"base_model: {base}",
        "tags: [merged-lora, hf-playground]",
        "---",
        f"# {out.name}",
        "",
        f"The LoRA adapter `{adapter_id}` merged into its base `{base}` by HF Playground (`python -m services lora "
        "merge`): a full model that loads without peft.",
        "",
        "| check | max abs logit difference |",
        "|---|---|",
        f"| merged vs base + adapter | {result['merged_vs_adapter_max_abs_logit_diff']:.2e} |",
        f"| merged vs base (must differ) | {result['merged_vs_base_max_abs_logit_diff']:.2e} |",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "merge.json").write_text(json.dumps({k: v for k, v in result.items() if k != "output_dir"}, indent=2))
