"""The model side of a server bundle (copied verbatim as `bundle_engine.py` beside `server.py`): load its one
model, then generate, embed or classify with it.

It imports nothing of the playground, only torch and transformers (inside functions, so that `/health` answers
while they load). `bundle.json` beside the server says the kind: "chat" (a causal LM: token-by-token generation
that ends after the current token when its `halt` event is set), "embeddings" (the pooling and normalisation the
model's sentence-transformers files describe, else mean pooling, normalised) or "classification" (label scores,
softmax or sigmoid as transformers' pipeline does). An ONNX export of the playground (`model.int8.onnx` or
`model.onnx` in the model folder) runs in ONNX Runtime instead of PyTorch, with the same answers. One lock
(`busy`) guards the model and its fast tokenizer, which fails ("Already borrowed") when two threads use it at once:
generations run one after the other.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POOLING = ("cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean",
                   "pooling_mode_lasttoken": "lasttoken"}  # fmt: skip
_JOINER = "\u2060"  # a word joiner: splits a control token's spelling so that typed text stays text


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sentence_modules(folder: Path) -> list[tuple[str, str]]:
    """The sentence-transformers modules of a folder as (kind, sub-folder): [] for a plain transformers folder."""
    modules = _json(Path(folder) / "modules.json")
    if not isinstance(modules, list):
        return []
    return [
        (str(m.get("type", "")).rsplit(".", 1)[-1], str(m.get("path", ""))) for m in modules if isinstance(m, dict)
    ]


def pooling_modes(folder: Path) -> list[str]:
    """How the model's sentence-transformers files pool its token vectors (["mean"] when they do not say)."""
    path = next((p for kind, p in sentence_modules(folder) if kind == "Pooling"), "1_Pooling")
    config = _json(Path(folder) / path / "config.json") or {}
    mode = config.get("pooling_mode")
    if mode is None:
        return [m for key, m in _LEGACY_POOLING.items() if config.get(key)] or ["mean"]
    return [mode] if isinstance(mode, str) else list(mode)


def token_limit(config: Any, tokenizer: Any = None) -> int:
    """The longest input the model reads, in tokens (its position embeddings, else the tokenizer's limit)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value - 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else 2048


class Engine:
    """The bundle's model, loaded once (`load`, in a background thread) and shared by every request."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = Path(folder), kind
        self.model = self.tokenizer = None
        self.device, self.dtype, self.context = "cpu", "float32", 0
        self.error: str | None = None
        self.busy = threading.RLock()
        self.loaded = threading.Event()

    def load(self) -> None:
        try:
            self._load()
            self.loaded.set()
        except Exception as err:  # /health says so; the server stays up to report it
            self.error = f"{type(err).__name__}: {err}"
            raise

    def _load(self) -> None:
        import torch
        import transformers

        self.device = os.environ.get("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        # A chat model in bfloat16 on a GPU; everything else in float32, so vectors and scores are the model's own.
        dtype = torch.bfloat16 if self.kind == "chat" and self.device.startswith("cuda") else torch.float32
        auto = {"chat": "AutoModelForCausalLM", "embeddings": "AutoModel",
                "classification": "AutoModelForSequenceClassification"}[self.kind]  # fmt: skip
        local = {"local_files_only": True, "trust_remote_code": False}
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder, **local)
        graph = next((self.folder / n for n in ("model.int8.onnx", "model.onnx") if (self.folder / n).is_file()), None)
        if graph is not None:  # an ONNX export of the playground: ONNX Runtime on the CPU
            model = _Onnx(graph, transformers.AutoConfig.from_pretrained(self.folder, **local))
            self.device = "cpu"
        else:
            model = getattr(transformers, auto).from_pretrained(
                self.folder, dtype=dtype, use_safetensors=True, **local
            )
        self.model = model.to(self.device).eval()
        self.dtype = "int8" if graph is not None and graph.name == "model.int8.onnx" else str(model.dtype)
        self.dtype = self.dtype.removeprefix("torch.")
        self.context = token_limit(model.config, self.tokenizer)
        if self.kind == "embeddings":
            settings = _json(self.folder / "sentence_bert_config.json") or {}
            self.max_length = min(int(settings.get("max_seq_length") or self.context), self.context)
            self.lower_case = bool(settings.get("do_lower_case"))
            self.pooling = pooling_modes(self.folder)[0]
            kinds = [kind for kind, _ in sentence_modules(self.folder)]
            self.normalize = not kinds or "Normalize" in kinds  # no sentence-transformers files: normalised
            self.tokenizer.padding_side = "right"

    # -- chat ----------------------------------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _as_text(self, text: str) -> str:
        """Typed text with the model's control tokens (`<|im_end|>`) spelled so they read as ordinary text."""
        if "<" not in text and "[" not in text:
            return text
        specials = {t for t in self.tokenizer.all_special_tokens if len(t) > 1}
        specials |= {
            t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special and len(t.content) > 1
        }
        for token in sorted(specials, key=len, reverse=True):
            text = text.replace(token, token[0] + _JOINER + token[1:])
        return text

    def encode(self, prompt: str | list[dict], chat: bool) -> Any:
        """The prompt's token ids (1 x n): a message list through the chat template, or a plain text."""
        with self.busy:
            if chat:
                messages = [{**m, "content": self._as_text(m["content"])} for m in prompt]
                encoded = self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
            else:
                encoded = self.tokenizer(self._as_text(prompt), return_tensors="pt")
        return encoded["input_ids"]

    def generate(self, ids: Any, max_tokens: int, sampling: dict, halt: threading.Event) -> Iterator[str | int]:
        """The new text piece by piece, then (last) the number of tokens generated. Setting `halt` ends the
        generation after the current token (a StoppingCriteria reads it); closing this iterator sets it."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class _Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return halt.is_set()

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        params = {k: v for k, v in sampling.items() if k != "seed"}
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            params["pad_token_id"] = self.tokenizer.eos_token_id
        result: dict = {}

        def work() -> None:
            try:
                with self.busy, torch.no_grad():
                    if halt.is_set():  # the client left while it waited for the model
                        result["tokens"] = 0
                        return
                    if sampling.get("seed") is not None:
                        torch.manual_seed(sampling["seed"])
                    inputs = ids.to(self.model.device)
                    out = self.model.generate(
                        input_ids=inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=max_tokens,
                        streamer=streamer, stopping_criteria=StoppingCriteriaList([_Halt()]), **params,
                    )  # fmt: skip
                    result["tokens"] = int(out.shape[1] - inputs.shape[1])
            except Exception as err:  # raised to the caller below
                result["error"] = err
            finally:
                streamer.end()

        worker = threading.Thread(target=work, name="bundle-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:  # a closed iterator (the client left) ends the generation after its current token
            halt.set()
            worker.join()
        if "error" in result:
            raise result["error"]
        yield result.get("tokens", 0)

    # -- embeddings and classification ---------------------------------------------------------------------------

    def count_tokens(self, texts: list[str]) -> int:
        with self.busy:
            limit = getattr(self, "max_length", self.context)
            return sum(len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"])

    def _batches(self, texts: list[str], size: int = 32) -> Iterator[tuple[Any, Any]]:
        import torch

        limit = getattr(self, "max_length", self.context)
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            encoded = self.tokenizer(batch, padding=True, truncation=True, max_length=limit, return_tensors="pt")
            encoded = encoded.to(self.model.device)
            with torch.no_grad():
                yield encoded, self.model(**encoded)

    def embed(self, texts: list[str], normalize: bool | None = None) -> list[list[float]]:
        """One vector per text, pooled and (as the model's files say, or when asked) L2-normalised."""
        import torch

        texts = [t.lower() for t in texts] if self.lower_case else texts
        rows = []
        with self.busy:
            for encoded, out in self._batches(texts):
                hidden = out.last_hidden_state.float()
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                elif self.pooling == "max":
                    pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
                elif self.pooling == "lasttoken":
                    last = encoded["attention_mask"].sum(dim=1) - 1
                    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
                else:
                    total, count = (hidden * mask).sum(dim=1), mask.sum(dim=1).clamp(min=1e-9)
                    pooled = total / (count.sqrt() if self.pooling == "mean_sqrt_len_tokens" else count)
                if self.normalize if normalize is None else normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                rows.extend(pooled.cpu().tolist())
        return rows

    def classify(self, texts: list[str]) -> list[list[dict]]:
        """Every label's score per text, best first (sigmoid for multi-label or one-label heads, else softmax)."""
        config = self.model.config
        sigmoid = config.problem_type == "multi_label_classification" or config.num_labels == 1
        answers = []
        with self.busy:
            for _, out in self._batches(texts):
                logits = out.logits.float()
                scores = logits.sigmoid() if sigmoid else logits.softmax(dim=-1)
                for row in scores.cpu().tolist():
                    labels = [{"label": config.id2label.get(i, f"LABEL_{i}"), "score": s} for i, s in enumerate(row)]
                    answers.append(sorted(labels, key=lambda item: -item["score"]))
        return answers


class _Onnx:
    """An exported graph run by ONNX Runtime, called like the transformers model it came from: ``model(**encoded)``
    gives ``.logits`` (a classifier) or ``.last_hidden_state`` (an encoder) as torch tensors."""

    def __init__(self, path: Path, config: Any) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.config, self.device, self.dtype = config, "cpu", "int8"

    def to(self, device: str) -> _Onnx:
        return self

    def eval(self) -> _Onnx:
        return self

    def __call__(self, **encoded: Any) -> Any:
        from types import SimpleNamespace

        import torch

        feed = {k: v.cpu().numpy().astype("int64") for k, v in encoded.items() if k in self.inputs}
        values = self.session.run(None, feed)
        return SimpleNamespace(**{n: torch.from_numpy(v) for n, v in zip(self.outputs, values, strict=True)})
