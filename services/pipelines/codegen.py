""" "Copy as code": the Python that reproduces the current task, model and settings with transformers alone.

Tasks transformers 5 still has become a `pipeline(...)` call; question answering, summarization and translation
use the Auto classes (v5 removed those pipelines). Packaged models are written as their Hub twins, and models
trained here as the folder their download unzips to (`./<name>`).
"""

from __future__ import annotations

from typing import Any

from services.models import catalog as models
from services.models import packs


def _model_ref(model_id: str, owner: str | None) -> tuple[str, str]:
    """(what to pass to from_pretrained, a comment line or "")."""
    if model_id in packs.PACKS:
        pack = packs.PACKS[model_id]
        return pack.hub_id, f"# '{model_id}' is the playground's packaged copy of {pack.hub_id}\n"
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
    if task == "question-answering":
        return _qa(head, inputs, params)
    if task in ("summarization", "translation"):
        return _generate_task(head, task, inputs, params)
    if task == "sentence-similarity":
        return _similarity(head, inputs)
    if task == "zero-shot-classification" and _is_embedding_model(model_id, owner):
        return _embedding_zero_shot(head, inputs, params)
    seed = params.pop("seed", None)
    if task == "text-generation":
        params["do_sample"] = bool(params.get("temperature"))  # the playground samples only with a temperature
        params.setdefault("max_new_tokens", 64)
    if task == "text-classification":
        params.setdefault("truncation", True)
    call_args = ", ".join([_py(inputs)] + [f"{k}={_py(v)}" for k, v in params.items()])
    imports = "from transformers import pipeline, set_seed\n\n" if seed is not None else (
        "from transformers import pipeline\n\n"
    )  # fmt: skip
    seeding = f"set_seed({seed})\n" if seed is not None else ""
    return (
        f"{imports}{head}pipe = pipeline({task!r}, model=model_id)\n"
        f"{seeding}result = pipe({call_args})\n"
        "print(result)\n"
    )


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
