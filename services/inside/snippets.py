""" "Copy as code" for the Inside views: the short transformers script behind each one.

The scripts are text to show, never run here. Every value a visitor chose goes in as a Python literal (`repr`):
the model id, the text, the top-k, the changed config numbers (whole numbers, checked first by
`build.apply_changes`), and attribute names only from the fixed list of `fields.EDITABLE`. Packaged models are
written as their Hub twins and trained models as the folder their download unzips to, as the pipelines' "Copy as
code" does (`services.pipelines.codegen`).
"""

from __future__ import annotations

from typing import Any

from services.inside import build, common, fields, lens
from services.pipelines.codegen import _model_ref

_AUTO = {
    "text-generation": "AutoModelForCausalLM",
    "fill-mask": "AutoModelForMaskedLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "summarization": "AutoModelForSeq2SeqLM",
    "translation": "AutoModelForSeq2SeqLM",
    "feature-extraction": "AutoModel",
}
TEXT_CHARS = 1_000  # a longer text is cut in the script (the views only read its first tokens anyway)


def _paths(config: Any) -> tuple[str | None, str | None]:
    """Where the final norm and the vocabulary head sit, as attribute paths on `model` (None: there is none)."""
    import torch

    with torch.device("meta"):  # shapes only: finding the modules allocates nothing
        model = build._model_class(config)(config)
    prefix = getattr(model, "base_model_prefix", "")
    stack = "model" + (f".{prefix}" if prefix and hasattr(model, prefix) else "")
    if getattr(config, "is_encoder_decoder", False):
        stack = "model.get_encoder()"
    norm = lens.final_norm(model)
    norm_path = next(
        (f"{stack}.{n}" for n in lens._FINAL_NORMS if getattr(lens.stack_of(model), n, None) is norm), None
    )
    head = next((f"model.{n}" for n in ("cls", "lm_head", "predictions") if getattr(model, n, None) is not None), None)
    return (norm_path if norm is not None else None), head


def _load(model_id: str, owner: str | None, resolved: Any, auto: str) -> str:
    adapter = resolved.source == "adapter" and resolved.base is not None
    if not adapter:
        ref, note = _model_ref(model_id, owner)
        return (
            f"{note}model_id = {ref!r}\n"
            "tokenizer = AutoTokenizer.from_pretrained(model_id)\n"
            "# eager attention: the fused kernels (sdpa, flash) do not hand out the attention weights\n"
            f'model = {auto}.from_pretrained(model_id, attn_implementation="eager").eval()\n'
        )
    base_ref, base_note = _model_ref(resolved.base.id, owner)
    ref, note = _model_ref(resolved.id, owner)
    return (
        f"{note}{base_note}base_id = {base_ref!r}\nadapter_id = {ref!r}\n"
        "tokenizer = AutoTokenizer.from_pretrained(base_id)\n"
        f'model = {auto}.from_pretrained(base_id, attn_implementation="eager")\n'
        "# the base with the adapter's LoRA layers inside it (is_trainable: only they count as trainable)\n"
        "model = PeftModel.from_pretrained(model, adapter_id, is_trainable=True).get_base_model().eval()\n"
    )


def snippets(
    model_id: str,
    text: str = "The capital of France is",
    owner: str | None = None,
    top_k: int = 5,
    changes: dict | None = None,
) -> dict[str, str]:
    """{"anatomy", "attention", "heads", "updates", "logit_lens", "build"}: a runnable Python script per view,
    as plain text (not HTML). `changes` are the "Build your own" numbers (checked like `build.estimate` does)."""
    config, resolved = build._source_config(model_id, owner)
    task = common.pick_task(resolved)
    auto = "AutoModelForSeq2SeqLM" if getattr(config, "is_encoder_decoder", False) else _AUTO[task]
    peft = "from peft import PeftModel\n" if resolved.source == "adapter" else ""
    imports = (
        f"import torch\n{peft}from transformers import {auto}, AutoTokenizer\n\n"
        "torch.set_grad_enabled(False)  # looking inside, not training\n"
    )
    load = imports + _load(model_id, owner, resolved, auto)
    run = "model.get_encoder()" if getattr(config, "is_encoder_decoder", False) else "model"
    forward = (
        f"text = {str(text or '')[:TEXT_CHARS]!r}\n"
        'inputs = tokenizer(text, return_tensors="pt")\n'
        f"out = {run}(**inputs, output_attentions=True, output_hidden_states=True)  # ONE pass, every view\n"
        'tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])\n'
        "attentions = torch.stack(out.attentions)[:, 0]  # [layer, head, query, key]; each row sums to 1\n"
    )
    norm, head = _paths(config)
    return {
        "anatomy": load + _ANATOMY,
        "attention": load + forward + "layer, head = 0, 0\nprint(tokens)\nprint(attentions[layer, head])\n",
        "heads": load + forward + _HEADS,
        "updates": load + forward + _UPDATES,
        "logit_lens": load + forward + _lens(task, config, norm, head, int(top_k)),
        "build": _build(resolved.base.id if resolved.base else model_id, owner, config, changes),
    }


_ANATOMY = """
total = sum(p.numel() for p in model.parameters())  # a tied weight counts once
print(f"{total:,} parameters")
for name, module in model.named_modules():
    params = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    print(name or "(the whole model)", type(module).__name__, f"{params:,}", f"{trainable:,} trainable")
print(model.config)
for precision, size in {"fp32": 4, "bf16": 2, "int8": 1, "4-bit": 0.5}.items():
    print(precision, f"{total * size / 2**20:.1f} MB of weights")
"""

_HEADS = """
n = attentions.shape[-1]
previous = attentions[..., torch.arange(2, n), torch.arange(1, n - 1)].mean(-1)  # [layer, head]
first = attentions[..., 2:, 0].mean(-1)
print("previous-token heads (layer, head):", (previous >= 0.5).nonzero().tolist())
print("first-token (sink) heads (layer, head):", (first >= 0.5).nonzero().tolist())
"""

_UPDATES = """
hidden = torch.stack(out.hidden_states)[:, 0]  # [layer + 1, token, hidden] (the last one after the final norm)
updates = (hidden[1:] - hidden[:-1]).norm(dim=-1)  # how much each layer changes each token
print(updates.mean(-1))
"""


def _lens(task: str, config: Any, norm: str | None, head: str | None, top_k: int) -> str:
    if getattr(config, "is_encoder_decoder", False) or task not in ("text-generation", "fill-mask"):
        return "# This model has no head that scores the vocabulary on its own: there is no logit lens for it.\n"
    show = (
        f"    top = probs.topk({top_k})\n"
        "    print(layer, [(tokenizer.decode(int(i)), round(float(p), 3)) for p, i in zip(top.values, top.indices)])\n"
    )
    if task == "fill-mask":
        return (
            f"\nhead = {head or 'model.cls'}  # the MLM head: hidden states -> vocabulary scores\n"
            'position = inputs["input_ids"][0].tolist().index(tokenizer.mask_token_id)  # the text needs a mask\n'
            "for layer, h in enumerate(out.hidden_states):  # layer 0: the embeddings\n"
            "    probs = head(h[0, position]).softmax(-1)\n" + show
        )
    state = "norm(h[0, -1])" if norm else "h[0, -1]"
    return (
        (f"\nnorm = {norm}  # the norm after the last block\n" if norm else "\n")
        + "head = model.get_output_embeddings()  # lm_head: hidden state -> next-token scores\n"
        "for layer, h in enumerate(out.hidden_states[:-1]):  # layer 0: the embeddings\n"
        f"    probs = head({state}).softmax(-1)\n"
        + show
        + "probs = out.logits[0, -1].softmax(-1)  # after the last layer: the model's own prediction\n"
        "print(len(out.hidden_states) - 1, tokenizer.decode(int(probs.argmax())))\n"
    )


def _build(model_id: str, owner: str | None, config: Any, changes: dict | None) -> str:
    _, clean = build.apply_changes(config, changes or {})
    cls = build._model_class(config).__name__
    ref, note = _model_ref(model_id, owner)
    sets = "".join(f"config.{fields.attribute(config, name)} = {int(value)!r}\n" for name, value in clean.items())
    return (
        "import torch\n"
        f"from transformers import AutoConfig, AutoTokenizer, {cls}\n\n"
        f"{note}model_id = {ref!r}\n"
        "config = AutoConfig.from_pretrained(model_id)\n"
        f"{sets}"
        'with torch.device("meta"):  # shapes only: nothing is allocated\n'
        f"    model = {cls}(config)\n"
        'print(f"{sum(p.numel() for p in model.parameters()):,} parameters")\n'
        f"model = {cls}(config)  # random weights\n"
        'model.save_pretrained("my-model")\n'
        'AutoTokenizer.from_pretrained(model_id).save_pretrained("my-model")\n'
    )
