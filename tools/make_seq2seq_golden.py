"""Build the tiny seq2seq test models and record what transformers 4.x's pipelines returned for them.

The playground runs transformers 5, which removed the summarization and translation pipelines; its runners in
`services/pipelines/seq2seq.py` must return what 4.x returned. This script is the reference side: it runs under a
separate transformers 4.x venv, never under the app's, and is not part of the test suite:

    python3 -m venv /tmp/tf4-s2s
    /tmp/tf4-s2s/bin/pip install torch==2.13.0 transformers==4.57.1 sentencepiece
    /tmp/tf4-s2s/bin/python tools/make_seq2seq_golden.py [--rebuild-models]

It writes four tiny random encoder-decoder models (T5, BART, Marian, mBART) under tests/data/seq2seq/ (once, or
again with --rebuild-models; the weights are seeded) and tests/data/seq2seq/golden.json with every case's inputs,
parameters and 4.x outputs.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("make_seq2seq_golden")

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "seq2seq"

ENGLISH = [
    "the city council met on monday to discuss the new budget for schools and roads",
    "scientists say the river has grown warmer over the last ten years",
    "the small company sold more books this year than ever before",
    "heavy rain closed the main road into the city for two days",
    "the team won the final match after a long and difficult season",
    "a new park will open near the old train station next spring",
    "prices for food and fuel rose again in march, the report said.",
    "the museum shows paintings from the north of the country",
    "students and teachers asked for more time to prepare for the exams",
    "the bridge was built in 1890 and repaired twice since then",
]
FRENCH = [
    "le conseil municipal s'est réuni lundi pour discuter du nouveau budget",
    "les scientifiques disent que la rivière est devenue plus chaude",
    "la petite entreprise a vendu plus de livres cette année",
    "de fortes pluies ont fermé la route principale pendant deux jours",
    "l'équipe a gagné le match final après une longue saison",
    "un nouveau parc ouvrira près de l'ancienne gare au printemps",
    "les prix de la nourriture et du carburant ont encore augmenté en mars.",
    "le musée montre des peintures du nord du pays",
]
CORPUS = [*ENGLISH, *FRENCH] * 4

SHORT = "the team won the final match"
MEDIUM = "scientists say the river has grown warmer, and the city council met on monday to discuss it."
# Longer than every tiny tokenizer's model_max_length, so truncation=True has to cut it.
LONG = " ".join(ENGLISH * 3)
BATCH = [SHORT, MEDIUM, "prices rose again in march", "the museum shows paintings"]
# Text whose decoding the clean-up of tokenization spaces changes (" ," -> ",", " n't" -> "n't" ...).
SPACED = "it 's fine , is n't it ? yes . the team won !"


def _unigram_tokenizer(specials: list[str], vocab_size: int):
    """A SentencePiece-style Unigram tokenizer (the kind T5 and mBART ship) trained on the tiny corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    raw.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    raw.train_from_iterator(CORPUS, trainer=trainer)
    return raw


def build_t5(folder: Path) -> None:
    """T5 with the task_specific_params layout of the real t5-small (smaller lengths keep the tests fast)."""
    import torch
    from tokenizers import processors
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration, T5TokenizerFast

    raw = _unigram_tokenizer(["<pad>", "</s>", "<unk>"], vocab_size=300)
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", raw.token_to_id("</s>"))]
    )
    tokenizer = T5TokenizerFast(tokenizer_object=raw, extra_ids=4, model_max_length=48)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        initializer_factor=1.0,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        task_specific_params={
            "summarization": {
                "early_stopping": True,
                "length_penalty": 2.0,
                "max_length": 40,
                "min_length": 10,
                "no_repeat_ngram_size": 3,
                "num_beams": 4,
                "prefix": "summarize: ",
            },
            "translation_en_to_de": {
                "early_stopping": True,
                "max_length": 30,
                "num_beams": 4,
                "prefix": "translate English to German: ",
            },
            "translation_en_to_fr": {
                "early_stopping": True,
                "max_length": 30,
                "num_beams": 4,
                "prefix": "translate English to French: ",
            },
        },
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config).eval()
    # Random weights rarely pick </s>; a louder </s> row lets outputs end at varied lengths, so min_length,
    # early stopping and length penalties change results and every case stays short.
    model.lm_head.weight.data[config.eos_token_id] *= 4.0
    # Like the real t5-small: token ids only, no lengths, so the pipeline's own defaults show through.
    model.generation_config = GenerationConfig(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_bart(folder: Path) -> None:
    """BART with distilbart-cnn's summarization task params and generation config (smaller lengths)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizerFast, GenerationConfig

    with tempfile.TemporaryDirectory() as tmp:
        raw = ByteLevelBPETokenizer()
        raw.train_from_iterator(
            CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        )
        raw.save_model(tmp)
        tokenizer = BartTokenizerFast(
            vocab_file=f"{tmp}/vocab.json", merges_file=f"{tmp}/merges.txt", model_max_length=40
        )
    lengths = {"early_stopping": True, "length_penalty": 2.0, "max_length": 36, "min_length": 12}
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        init_std=0.3,
        task_specific_params={"summarization": {**lengths, "no_repeat_ngram_size": 3, "num_beams": 4}},
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config).eval()
    # Larger random weights and a </s> bias, tuned by hand, give outputs of varied lengths (see build_t5).
    model.final_logits_bias[0, config.eos_token_id] = 4.0
    model.generation_config = GenerationConfig(
        bos_token_id=0,
        decoder_start_token_id=2,
        eos_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        pad_token_id=1,
        no_repeat_ngram_size=3,
        num_beams=4,
        **lengths,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_marian(folder: Path) -> None:
    """Marian (opus-mt style): two SentencePiece models, one shared vocab.json, pad as decoder start token."""
    import sentencepiece as spm
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, lines in (("source", ENGLISH * 4), ("target", FRENCH * 4)):
            (Path(tmp) / f"{name}.txt").write_text("\n".join(lines) + "\n")
            spm.SentencePieceTrainer.train(
                input=f"{tmp}/{name}.txt",
                model_prefix=f"{tmp}/{name}",
                vocab_size=100,
                model_type="unigram",
                character_coverage=1.0,
                bos_id=-1,
                eos_id=-1,
                unk_id=0,
                pad_id=-1,
                minloglevel=2,
            )
        vocab = {"</s>": 0, "<unk>": 1}
        for name in ("source", "target"):
            sp = spm.SentencePieceProcessor(model_file=f"{tmp}/{name}.model")
            for i in range(sp.get_piece_size()):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
        vocab["<pad>"] = len(vocab)
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        tokenizer = MarianTokenizer(
            source_spm=f"{tmp}/source.model",
            target_spm=f"{tmp}/target.model",
            vocab=f"{tmp}/vocab.json",
            source_lang="en",
            target_lang="fr",
            model_max_length=40,
        )
        tokenizer.save_pretrained(folder)
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
        init_std=0.4,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    model.final_logits_bias[0, 0] = 2.0
    # opus-mt ships num_beams > 4; 4.x's pipeline kept its own num_beams=4 over it, which the golden file records.
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]],
        bos_token_id=0,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=32,
        num_beams=6,
        pad_token_id=pad,
    )
    model.save_pretrained(folder)


def build_mbart(folder: Path) -> None:
    """mBART (multilingual): its tokenizer has _build_translation_inputs, so src_lang/tgt_lang pick the languages."""
    import torch
    from tokenizers import processors
    from transformers import GenerationConfig, MBartConfig, MBartForConditionalGeneration, MBartTokenizerFast

    raw = _unigram_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], vocab_size=250)
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s> en_XX", special_tokens=[("</s>", 2), ("en_XX", 0)]
    )
    tokenizer = MBartTokenizerFast(tokenizer_object=raw, src_lang="en_XX", tgt_lang="ro_RO", model_max_length=40)
    config = MBartConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
        init_std=0.5,
    )
    torch.manual_seed(0)
    model = MBartForConditionalGeneration(config).eval()
    model.final_logits_bias[0, 2] = 3.0
    model.generation_config = GenerationConfig(
        bos_token_id=0, decoder_start_token_id=2, eos_token_id=2, forced_eos_token_id=2, pad_token_id=1, max_length=32
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


BUILDERS = {"t5": build_t5, "bart": build_bart, "marian": build_marian, "mbart": build_mbart}


def _case(model: str, task: str, inputs, call: dict | None = None) -> dict:
    """One golden case: `pipeline(task)(inputs, **call)` in 4.x against `runner(inputs, **runner_kwargs)` now."""
    call = dict(call or {})
    runner_kwargs = dict(call)
    # The runners truncate by default; 4.x's pipeline did not, so the reference call says it explicitly.
    call.setdefault("truncation", True)
    kind = "summarize" if task == "summarization" else "translate"
    if task.startswith("translation_") and "src_lang" not in runner_kwargs:
        _, src, _, tgt = task.split("_")
        runner_kwargs.update(src_lang=src, tgt_lang=tgt)
    return {
        "model": model,
        "task": task,
        "inputs": inputs,
        "call": call,
        "runner": kind,
        "runner_kwargs": runner_kwargs,
    }


def cases() -> list[dict]:
    greedy = {"num_beams": 1, "do_sample": False}
    beam = {"num_beams": 3, "do_sample": False}
    out = []
    for model in ("t5", "bart"):
        out += [
            _case(model, "summarization", SHORT),
            _case(model, "summarization", MEDIUM),
            _case(model, "summarization", LONG),
            _case(model, "summarization", BATCH),
            _case(model, "summarization", MEDIUM, {**greedy, "max_length": 12}),
            _case(model, "summarization", MEDIUM, {**greedy, "max_new_tokens": 9}),
            _case(model, "summarization", MEDIUM, {**greedy, "min_length": 15, "max_length": 25}),
            _case(model, "summarization", BATCH, {**greedy, "max_length": 16}),
            _case(model, "summarization", LONG, {**beam, "no_repeat_ngram_size": 2, "max_length": 24}),
            _case(model, "summarization", MEDIUM, {**beam, "length_penalty": 0.5, "early_stopping": False}),
            _case(model, "summarization", MEDIUM, {"num_beams": 5, "min_length": 3, "max_length": 30}),
            _case(model, "summarization", SHORT, {**beam, "num_return_sequences": 2, "max_length": 14}),
            _case(model, "summarization", BATCH[:2], {**beam, "num_return_sequences": 2, "max_length": 14}),
            _case(model, "summarization", SHORT, {"truncation": False, "max_length": 10}),
            _case(model, "summarization", MEDIUM, {"clean_up_tokenization_spaces": True, "max_length": 20}),
            # A caller's GenerationConfig (written here as a dict) replaced the pipeline's settings in 4.x.
            _case(model, "summarization", MEDIUM, {"generation_config": {"max_new_tokens": 10, "num_beams": 2}}),
        ]
    out += [
        _case("t5", "translation_en_to_fr", SHORT),
        _case("t5", "translation_en_to_fr", LONG),
        _case("t5", "translation_en_to_de", MEDIUM),
        _case("t5", "translation_en_to_fr", BATCH, {**greedy, "max_length": 15}),
        _case("t5", "translation_en_to_de", MEDIUM, {**beam, "no_repeat_ngram_size": 2, "min_length": 8}),
        # Plain "translation" made 4.x pick the first translation_* entry of task_specific_params.
        _case("t5", "translation", MEDIUM),
        _case("t5", "translation_en_to_ro", SHORT, {"max_length": 12}),
        _case("marian", "translation", SHORT),
        _case("marian", "translation", LONG),
        _case("marian", "translation", BATCH),
        _case("marian", "translation", MEDIUM, {**greedy, "max_length": 20}),
        _case("marian", "translation", MEDIUM, {**beam, "no_repeat_ngram_size": 2, "min_length": 6}),
        _case("marian", "translation", SHORT, {**beam, "num_return_sequences": 3, "max_length": 16}),
        _case("marian", "translation_en_to_fr", MEDIUM, {"max_new_tokens": 10}),
    ]
    langs = {"src_lang": "en_XX", "tgt_lang": "ro_RO"}
    out += [
        _case("mbart", "translation", SHORT, langs),
        _case("mbart", "translation", LONG, langs),
        _case("mbart", "translation", BATCH, {**langs, **greedy, "max_length": 16}),
        _case("mbart", "translation", MEDIUM, {"src_lang": "en_XX", "tgt_lang": "fr_XX", **beam, "min_length": 6}),
        _case("mbart", "translation", BATCH[:2], {**langs, **beam, "num_return_sequences": 2, "max_length": 12}),
    ]
    return out


def run_cases(all_cases: list[dict]) -> list[dict]:
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig, pipeline

    pipes = {}
    for i, case in enumerate(all_cases):
        name = case["model"]
        key = (name, case["task"])
        if key not in pipes:
            # A fresh model per pipeline: 4.x popped the prefix out of model.config.task_specific_params, so a
            # second pipeline over the same model object lost it.
            folder = DATA / name
            model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
            pipes[key] = pipeline(case["task"], model=model, tokenizer=tokenizer, device="cpu")
        call = dict(case["call"])
        if "generation_config" in call:
            call["generation_config"] = GenerationConfig(**call["generation_config"])
        start = time.perf_counter()
        output = pipes[key](case["inputs"], **call)
        case["id"] = f"{i:02d}-{name}-{case['task']}"
        case["output"] = output
        logger.info("%s (%.1f s) -> %s", case["id"], time.perf_counter() - start, output)
    return [{"transformers": transformers.__version__}, *all_cases]


def decode_cases() -> list[dict]:
    """How 4.x decoded with and without clean-up, for text where the clean-up changes something."""
    from transformers import AutoTokenizer

    out = []
    for name in BUILDERS:
        tokenizer = AutoTokenizer.from_pretrained(DATA / name)
        ids = tokenizer(SPACED)["input_ids"]
        for clean_up in (False, True):
            text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up)
            out.append({"model": name, "ids": ids, "clean_up_tokenization_spaces": clean_up, "text": text})
    return out


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild-models", action="store_true", help="rebuild the tiny models even if present")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, build in BUILDERS.items():
        folder = DATA / name
        if args.rebuild_models or not (folder / "config.json").exists():
            logger.info("building %s", folder)
            build(folder)
    # Models this small gain nothing from threads, and on a busy 2-core machine they run far slower with them.
    torch.set_num_threads(1)
    meta, *results = run_cases(cases())
    golden = {"transformers": meta["transformers"], "cases": results, "decode": decode_cases()}
    (DATA / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    logger.info("wrote %d cases to %s", len(results), DATA / "golden.json")


if __name__ == "__main__":
    main()
