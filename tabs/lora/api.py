"""The LoRA tab's API (gradio_client): `/lora_mask`, `/lora_estimate`, `/lora_train`, `/lora_compare`,
`/lora_merge`. A config is the job.yaml text (`task: chat`, `model`, `dataset`, `lora`, ...), checked as the tab's
own form is: the caller's own data only, no remote code, the visitor policy of a public Space. A training job is
followed with `/job` and `/finetune_result`, a merge with `/job`."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from services.core.limits import run_gate
from services.core.safety import check_remote_code
from services.jobs.manager import JobManager
from services.training import jobs as training_jobs
from services.training import lora_jobs
from services.training.config import TrainConfig
from services.training.policy import check_for_visitors
from tabs.session import friendly, owner_of


def checked_config(text: str, owner: str) -> TrainConfig:
    """A visitor's job.yaml as a config that may run here, or the sentence that says why not."""
    config = TrainConfig.from_yaml_text(text or "")
    if config.lora is None:
        raise gr.Error("A LoRA config needs a lora: section (for example lora: {r: 16, alpha: 32}).")
    check_remote_code(config.trust_remote_code)
    check_for_visitors(config)
    training_jobs.check_source(config.dataset.source, owner)
    return config


def register(manager: JobManager) -> None:
    @friendly
    def lora_mask(config: str, examples: int, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """A chat job's loss mask before training: the first conversations token by token with a `trained` flag,
        the counts, turn and token-length statistics, and warnings (EOS masked, rows cut, render differs)."""
        from services.training.mask import loss_mask

        owner = owner_of(request, profile)
        return loss_mask(checked_config(config, owner), owner, examples=max(1, min(int(examples or 3), 10)))

    @friendly
    def lora_estimate(config: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """The adapter's target layers, trainable parameters and share, memory terms against this device, and a
        rough time, before anything trains."""
        from services.training.estimate import estimate

        owner = owner_of(request, profile)
        return estimate(checked_config(config, owner), owner)

    @friendly
    def lora_train(config: str, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Start a LoRA training from a YAML config; the adapter becomes trained:<name>. Returns the job id."""
        owner = owner_of(request, profile)
        return training_jobs.start(manager, owner, checked_config(config, owner), name)

    @friendly
    def lora_compare(adapter: str, prompt: str, max_new_tokens: int, seed: int, temperature: float,
                     request: gr.Request, profile: gr.OAuthProfile | None) -> Iterator[dict]:  # fmt: skip
        """Base and adapter answers to the same prompt, streamed side by side ({base, adapter, tokens, done};
        the last also has finish), from one copy of the base with the adapter switched off for its side."""
        from services.training.compare import compare

        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            yield from compare(adapter, prompt, owner=owner, max_new_tokens=int(max_new_tokens or 64),
                               seed=int(seed or 0), temperature=float(temperature or 0))  # fmt: skip

    @friendly
    def lora_merge(adapter: str, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Merge an adapter into its base as trained:<name> (a job: follow it with /job; its result holds the
        logit checks). Returns the job id."""
        return lora_jobs.start_merge(manager, owner_of(request, profile), adapter, name)

    gr.api(lora_mask, api_name="lora_mask")
    gr.api(lora_estimate, api_name="lora_estimate")
    gr.api(lora_train, api_name="lora_train")
    gr.api(lora_compare, api_name="lora_compare")
    gr.api(lora_merge, api_name="lora_merge")
