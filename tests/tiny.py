"""Tiny random models for every task, built in seconds with no network, for service tests.

`build_tiny_models(root)` writes one `save_pretrained` folder per kind and returns their paths:
bert-* (WordPiece) heads for classification, NER, QA, fill-mask and a plain encoder; gpt2 (byte-level BPE)
for causal LM; t5 (the same BPE) for seq2seq.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (  # noqa: SIM905 - a readable word list
    "the a an is was and or but not very good bad great terrible movie film book food service place "
    "love hate like it this that i you we they he she paris london berlin alice bob acme google "
    "what where who when capital of france city river big small happy sad fast slow"
).split()
CORPUS = [
    "the movie was very good and i love it",
    "the food was terrible and the service was slow",
    "alice lives in paris and works at acme",
    "what is the capital of france ? paris is the capital",
    "bob likes the big city but not the small river",
] * 20


def _wordpiece():
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz?.,!", *WORDS]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    # transformers 5 ignores vocab_file= for fast tokenizers (every word becomes [UNK]): pass the vocabulary itself.
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True)


def _byte_bpe():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<pad>", "</s>", "<unk>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="</s>"
    )


def build_tiny_models(root: Path) -> dict[str, Path]:
    """Write the tiny models under `root` (once; an existing folder is reused) and return name -> folder."""
    import torch
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    torch.manual_seed(0)
    root = Path(root)
    paths: dict[str, Path] = {}
    wordpiece = _wordpiece()
    bert = dict(
        vocab_size=len(wordpiece),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    labels = {
        "text-classification": ["NEGATIVE", "POSITIVE"],
        "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    }
    heads = {
        "bert-classifier": (BertForSequenceClassification, labels["text-classification"]),
        "bert-ner": (BertForTokenClassification, labels["token-classification"]),
        "bert-qa": (BertForQuestionAnswering, None),
        "bert-mlm": (BertForMaskedLM, None),
        "bert-encoder": (BertModel, None),
    }
    for name, (cls, names) in heads.items():
        folder = paths[name] = root / name
        if (folder / "config.json").exists():
            continue
        extra = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}} if names else {}
        cls(BertConfig(**bert, **extra)).save_pretrained(folder)
        wordpiece.save_pretrained(folder)

    bpe = _byte_bpe()
    folder = paths["gpt2"] = root / "gpt2"
    if not (folder / "config.json").exists():
        config = GPT2Config(
            vocab_size=len(bpe),
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=128,
            bos_token_id=bpe.eos_token_id,
            eos_token_id=bpe.eos_token_id,
        )
        GPT2LMHeadModel(config).save_pretrained(folder)
        bpe.save_pretrained(folder)
    folder = paths["t5"] = root / "t5"
    if not (folder / "config.json").exists():
        config = T5Config(
            vocab_size=len(bpe),
            d_model=32,
            d_ff=64,
            d_kv=16,
            num_layers=2,
            num_heads=2,
            decoder_start_token_id=bpe.pad_token_id,
            pad_token_id=bpe.pad_token_id,
            eos_token_id=bpe.eos_token_id,
        )
        T5ForConditionalGeneration(config).save_pretrained(folder)
        bpe.save_pretrained(folder)
    return paths
