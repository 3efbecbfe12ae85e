""" "Copy as code": the Python that reproduces the current task, model and settings with transformers alone.

Tasks transformers 5 still has become a `pipeline(...)` call; question answering, summarization and translation
use the Auto classes (v5 removed those pipelines). Packaged models are written as their Hub twins, and models
trained here as the folder their download unzips to (`./<name>`), packaged task adapters as a copy of their
folder (`./minilm-sentiment`). A PEFT adapter becomes its base loaded with the Auto class of its task type and the
adapter put on it with `PeftModel.from_pretrained`.
"""

from __future__ import annotations

from typing import Any

from services.core.errors import PlaygroundError, TaskMismatch
from services.models import catalog as models
from services.models import fast_cpu, packaged_adapters, packs


def _model_ref(model_id: str, owner: str | None) -> tuple[str, str]:
    """(what to pass to from_pretrained, a comment line or "")."""
    if model_id in packs.PACKS:
        pack = packs.PACKS[model_id]
        return pack.hub_id, f"# '{model_id}' is the playground's packaged copy of {pack.hub_id}\n"
    if model_id == fast_cpu.FAST_ID:  # the same weights: the code runs them in PyTorch, the answers are the same
        pack = packs.PACKS[fast_cpu.BASE]
        return pack.hub_id, (
            f"# '{model_id}' runs {pack.hub_id}'s own 4-bit weights in ONNX Runtime in the "
            "playground; with\n# transformers it is the model itself (the same greedy answers).\n"
        )
    if model_id in packaged_adapters.ADAPTERS:
        return f"./{model_id}", (
            f"# '{model_id}' is a LoRA adapter shipped with the playground: copy its folder\n"
            f"# assets/adapters/{model_id}/ (in the playground's repository) next to this script as {model_id}/.\n"
        )
    if model_id.startswith(models.TRAINED_PREFIX):
        # Never the server's folder: the visitor downloads the model and runs the code next to it.
        name = model_id[len(models.TRAINED_PREFIX) :]
        return f"./{name}", (
            '# A model you trained in the playground: download it (Models tab, "Download model (zip)", or the\n'
            f"# /download_model API) and unzip it next to this script: it unpacks to the folder {name}/.\n"
        )
    return model_id, ""


def _py(value: Any) -> str:
    return repr(value)


def snippet(task: str, model_id: str, inputs: Any, params: dict | None = None, owner: str | None = None) -> str:
    task = models.canonical_task(task)
    params = {k: v for k, v in (params or {}).items() if v is not None}
    ref, note = _model_ref(model_id, owner)
    head = f"{note}model_id = {ref!r}\n"
    adapter = _adapter(model_id, owner)
    if adapter is not None:
        return _adapter_snippet(task, adapter, inputs, params, owner)
    if task == "question-answering":
        return _qa(head, inputs, params)
    if task in ("summarization", "translation"):
        return _generate_task(head, task, inputs, params)
    if task == "sentence-similarity":
        return _similarity(head, inputs)
    if task == "zero-shot-classification" and _is_embedding_model(model_id, owner):
        return _embedding_zero_shot(head, inputs, params)
    return _pipeline_code(task, inputs, params, head)


def _pipeline_code(task: str, inputs: Any, params: dict, head: str, load: str = "", imports: str = "") -> str:
    """A `pipeline(...)` call: on `model_id`, or on the `model` and `tokenizer` that `load` builds."""
    seed = params.pop("seed", None)
    if task == "text-generation":
        params["do_sample"] = bool(params.get("temperature"))  # the playground samples only with a temperature
        params.setdefault("max_new_tokens", 64)
    if task == "text-classification":
        params.setdefault("truncation", True)
    call_args = ", ".join([_py(inputs)] + [f"{k}={_py(v)}" for k, v in params.items()])
    names = ", ".join(sorted({"pipeline", *(["set_seed"] if seed is not None else []), *imports.split()}))
    seeding = f"set_seed({seed})\n" if seed is not None else ""
    model_args = "model=model, tokenizer=tokenizer" if load else "model=model_id"
    peft = "from peft import PeftModel\n" if load else ""
    return (
        f"{peft}from transformers import {names}\n\n{head}{load}pipe = pipeline({task!r}, {model_args})\n"
        f"{seeding}result = pipe({call_args})\n"
        "print(result)\n"
    )


def _adapter(model_id: str, owner: str | None) -> models.ResolvedModel | None:
    """The resolved adapter when `model_id` is one (only trained models, folders and packaged adapters can be)."""
    if not (
        model_id.startswith(models.TRAINED_PREFIX)
        or models._path_syntax(model_id)
        or model_id in packaged_adapters.ADAPTERS
    ):
        return None
    try:
        resolved = models.resolve(model_id, owner)
    except PlaygroundError:
        return None
    return resolved if resolved.source == "adapter" and resolved.base is not None else None


def _adapter_snippet(task: str, adapter: models.ResolvedModel, inputs: Any, params: dict, owner: str | None) -> str:
    """The base loaded with its task type's Auto class, the adapter put on it with peft, then the task as usual."""
    from pathlib import Path

    from services.models import adapters

    folder = Path(adapter.location)
    if task not in adapter.tasks:
        raise TaskMismatch(f"This adapter cannot do {task}. It can do: {models.describe_tasks(adapter.tasks)}.")
    task_type = str(adapters.read_config(folder).get("task_type"))
    class_name = adapters.TASK_TYPES.get(task_type, ("",))[0] or _AUTO_FOR_TASK.get(task, "AutoModel")
    base_ref, base_note = _model_ref(adapter.base.id, owner)
    ref, note = _model_ref(adapter.id, owner)
    tokenizer_from = "adapter_id" if adapters.tokenizer_location(adapter, "") else "base_id"
    head = f"{note}{base_note}base_id = {base_ref!r}\nadapter_id = {ref!r}\n"
    load = (
        f"tokenizer = AutoTokenizer.from_pretrained({tokenizer_from})\n"
        f"model = {class_name}.from_pretrained(base_id{_label_args(folder, task_type)})\n"
        "model = PeftModel.from_pretrained(model, adapter_id)  # the adapter's weights on the base\n"
    )
    if task == "question-answering":
        code = _qa("", inputs, params).replace(_QA_LOAD, "")
        return code.replace("AutoModelForQuestionAnswering, AutoTokenizer\n\n", "AutoModelForQuestionAnswering, "
                            f"AutoTokenizer\nfrom peft import PeftModel\n\n{head}{load}", 1)  # fmt: skip
    if task in ("summarization", "translation"):
        return _chat_task(head, load, class_name, task, inputs, params)
    return _pipeline_code(task, inputs, params, head, load, f"{class_name} AutoTokenizer")


_AUTO_FOR_TASK = {
    "text-generation": "AutoModelForCausalLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "fill-mask": "AutoModelForMaskedLM",
    "question-answering": "AutoModelForQuestionAnswering",
}
_QA_LOAD = (
    "tokenizer = AutoTokenizer.from_pretrained(model_id)\n"
    "model = AutoModelForQuestionAnswering.from_pretrained(model_id)\n"
)


def _label_args(folder, task_type: str) -> str:
    """The label names of a classification adapter's head, as from_pretrained arguments."""
    from services.models import adapters

    if task_type not in ("SEQ_CLS", "TOKEN_CLS"):
        return ""

    from types import SimpleNamespace

    config = SimpleNamespace(architectures=[], id2label={})  # what `set_head_of` fills in: the head's labels
    adapters.set_head_of(folder, task_type, config)
    return f", num_labels={len(config.id2label)}, id2label={config.id2label!r}, label2id={config.label2id!r}"


def _chat_task(head: str, load: str, class_name: str, task: str, inputs: Any, params: dict) -> str:
    """Summarization or translation with an adapter: by prompt on a chat model, by T5's prefix on a seq2seq one."""
    from services.pipelines.chat import language_name

    text = inputs if isinstance(inputs, str) else inputs[0]
    src = language_name(params.pop("src_lang", None), "English")
    tgt = language_name(params.pop("tgt_lang", None), "French")
    gen = ", ".join(f"{k}={_py(v)}" for k, v in params.items()) or "max_new_tokens=128"
    instruction = (
        "Summarize the following text in one or two sentences. Reply with the summary only."
        if task == "summarization"
        else f"Translate this {src} text into {tgt}. Reply with the {tgt} translation only."
    )
    if class_name == "AutoModelForSeq2SeqLM":  # T5-style: the text (with T5's task prefix), no chat template
        prefix = "summarize: " if task == "summarization" else f"translate {src} to {tgt}: "
        run = (f"inputs = tokenizer({prefix!r} + text, return_tensors='pt', truncation=True)\n"
               f"output = model.generate(**inputs, {gen})\n"
               "print(tokenizer.decode(output[0], skip_special_tokens=True))\n")  # fmt: skip
    else:
        run = (f"messages = [{{'role': 'user', 'content': {instruction!r} + '\\n\\n' + text}}]\n"
               "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors='pt', "
               "return_dict=True)\n"
               f"output = model.generate(**inputs, {gen})\n"
               "answer = output[0][inputs['input_ids'].shape[1]:]\n"
               "print(tokenizer.decode(answer, skip_special_tokens=True))\n")  # fmt: skip
    imports = f"from peft import PeftModel\nfrom transformers import {class_name}, AutoTokenizer\n\n"
    return f"{imports}{head}{load}text = {text!r}\n{run}"


def _qa(head: str, inputs: dict, params: dict) -> str:
    max_answer_len = params.get("max_answer_len", 15)
    return f"""import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

{head}tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForQuestionAnswering.from_pretrained(model_id)

question = {inputs.get("question", "")!r}
context = {inputs.get("context", "")!r}
enc = tokenizer(question, context, truncation="only_second", max_length=384, return_offsets_mapping=True,
                return_tensors="pt")
offsets = enc.pop("offset_mapping")[0]
with torch.no_grad():
    out = model(**enc)
# Only tokens of the context may start or end the answer.
in_context = torch.tensor([s == 1 for s in enc.sequence_ids(0)])
start = out.start_logits[0].masked_fill(~in_context, -1e4).softmax(-1)
end = out.end_logits[0].masked_fill(~in_context, -1e4).softmax(-1)
# Every (start, end) pair with end >= start and at most {max_answer_len} tokens long:
scores = torch.triu(start[:, None] * end[None, :]).tril({max_answer_len - 1})
s, e = divmod(int(scores.argmax()), scores.shape[1])
answer = {{"score": float(scores[s, e]), "start": int(offsets[s][0]), "end": int(offsets[e][1])}}
answer["answer"] = context[answer["start"]:answer["end"]]
print(answer)
"""


def _generate_task(head: str, task: str, inputs: Any, params: dict) -> str:
    text = inputs if isinstance(inputs, str) else inputs[0]
    from services.pipelines.chat import language_name

    src = language_name(params.pop("src_lang", None), "English")
    tgt = language_name(params.pop("tgt_lang", None), "French")
    gen = ", ".join(f"{k}={_py(v)}" for k, v in params.items()) or "max_new_tokens=128"
    if task == "summarization":
        instruction = "Summarize the following text in one or two sentences. Reply with the summary only."
        seq2seq_prefix = "summarize: "
    else:
        instruction = f"Translate this {src} text into {tgt}. Reply with the {tgt} translation only."
        seq2seq_prefix = f"translate {src} to {tgt}: "
    return f"""from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

{head}text = {text!r}
tokenizer = AutoTokenizer.from_pretrained(model_id)
if AutoConfig.from_pretrained(model_id).is_encoder_decoder:  # T5, BART, Marian: trained for the task
    model = AutoModelForSeq2SeqLM.from_pretrained(model_id)
    # T5 reads a task prefix; BART and Marian take the text as it is.
    prefix = {seq2seq_prefix!r} if model.config.model_type == "t5" else ""
    inputs = tokenizer(prefix + text, return_tensors="pt", truncation=True)
    output = model.generate(**inputs, {gen})
    print(tokenizer.decode(output[0], skip_special_tokens=True))
else:  # a chat model: ask for it in a prompt
    model = AutoModelForCausalLM.from_pretrained(model_id)
    messages = [{{"role": "user", "content": {instruction!r} + "\\n\\n" + text}}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    output = model.generate(**inputs, {gen})
    print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
"""


def _similarity(head: str, inputs: dict) -> str:
    return f"""from sentence_transformers import SentenceTransformer

{head}model = SentenceTransformer(model_id)
source = {inputs.get("source_sentence", "")!r}
sentences = {_py(list(inputs.get("sentences", [])))}
embeddings = model.encode([source, *sentences], normalize_embeddings=True)
print((embeddings[1:] @ embeddings[0]).tolist())
"""


def _is_embedding_model(model_id: str, owner: str | None) -> bool:
    try:
        tasks = models.resolve(model_id, owner).tasks
    except Exception:
        return False
    return "sentence-similarity" in tasks and "text-classification" not in tasks


def _embedding_zero_shot(head: str, inputs: Any, params: dict) -> str:
    labels = params.get("candidate_labels", [])
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if params.get("multi_label"):  # each label on its own, as the playground scores it
        comment = "# Each label becomes a sentence, scored on its own: its cosine similarity to the text."
        scoring = "scores = (vectors[1:] @ vectors[0]).clamp(0, 1)"
    else:
        comment = "# Each label becomes a sentence; the closest in meaning wins (softmax over cosine similarities)."
        scoring = "scores = ((vectors[1:] @ vectors[0]) / 0.05).softmax(-1)"
    return f"""from sentence_transformers import SentenceTransformer

{head}model = SentenceTransformer(model_id)
text = {inputs!r}
labels = {_py(labels)}
{comment}
vectors = model.encode([text] + [f"This text is about {{label}}." for label in labels], normalize_embeddings=True,
                       convert_to_tensor=True)
{scoring}
print(sorted(zip(labels, scores.tolist()), key=lambda pair: -pair[1]))
"""
