"""Build the tiny question-answering models and record what transformers 4.x's QA pipeline answered with them.

Kept for reproducibility; the test suite only reads what it wrote under ``tests/data/qa/``. Two steps, each run
with the transformers it needs:

    .venv/bin/python tools/make_qa_golden.py models          # transformers 5: the three tiny model folders
    /tmp/tf4-qa/bin/python tools/make_qa_golden.py golden    # transformers 4.57: golden.json

(the 4.x environment: ``python3 -m venv /tmp/tf4-qa && /tmp/tf4-qa/bin/pip install torch==2.13.0
transformers==4.57.1``). The models are random but seeded, with a QA head scaled up so that scores are spread out
rather than all but equal. Each folder loads in both versions: the generic tokenizer classes are saved as
``PreTrainedTokenizerFast`` with their ``model_input_names`` spelled out, because the two versions default them
differently.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger("make_qa_golden")

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "qa"
MODELS = ("bert-wordpiece", "roberta-bpe", "albert-unigram-left")

CORPUS = """\
The river Seine flows through Paris before it reaches the sea at Le Havre.
Paris is the capital of France and its largest city, with more than two million people.
Berlin is the capital of Germany; the river Spree crosses the city from east to west.
My name is Wolfgang and I live in Berlin, where I work as a baker near the old market.
Marie Curie was born in Warsaw in 1867 and moved to Paris to study physics and chemistry.
She won the Nobel Prize twice: in physics in 1903 and in chemistry in 1911.
The Amazon is the largest rainforest on Earth and is home to millions of species of insects, plants and birds.
Water boils at 100 degrees Celsius at sea level, but at a lower temperature on a high mountain.
The first computer programmer is often said to be Ada Lovelace, who wrote notes on the Analytical Engine.
Alice bought three apples, two pears and a melon at the market on Saturday morning.
The cat sat on the mat, and the dog slept by the door while the cat watched the birds.
Mount Everest, the highest mountain in the world, is 8,849 metres tall and lies between Nepal and China.
The library opens at nine o'clock and closes at six, except on Sundays when it is closed all day.
A café in Montréal serves crêpes, croissants and coffee; Zoë and José meet there every Friday.
Tokyo, Osaka and Kyoto are cities in Japan; the bullet train links them in a few hours.
Who wrote the book? When did it happen? Where is the station? What is the name of the river? How tall is it?
Why did the train stop? Which city is the capital? How many people live there?
The company was founded in 1998 by two students at Stanford University in California.
Light travels at about 300,000 kilometres per second, much faster than sound.
The old bridge was built in 1607 and is the oldest bridge across the river in the city.
"""

WORDPIECE_WORDS = """\
the a an of and in is was at to on by it its as from with for or but not than more most two three one
river seine flows through paris before reaches sea le havre capital france largest city million people
berlin germany spree crosses east west my name wolfgang live where work baker near old market marie curie
born warsaw moved study physics chemistry she won nobel prize twice amazon rainforest earth home millions
species insects plants birds water boils degrees celsius level lower temperature high mountain first computer
programmer often said be ada lovelace who wrote notes analytical engine alice bought apples pears melon
saturday morning cat sat mat dog slept door while watched mount everest highest world metres tall lies
between nepal china library opens nine o clock closes six except sundays when closed all day cafe montreal
serves crepes croissants coffee zoe jose meet there every friday tokyo osaka kyoto cities japan bullet train
links them few hours book did happen station what how why stop which many company founded students stanford
university california light travels about kilometres per second much faster sound bridge built oldest across
""".split()  # noqa: SIM905 - a readable word list

# (name, context): the texts the questions are asked of
LONG = (CORPUS.replace("\n", " ") + " ") * 3
CONTEXTS = {
    "short": "My name is Wolfgang and I live in Berlin.",
    "paragraph": (
        "Marie Curie was born in Warsaw in 1867. She moved to Paris to study physics and chemistry. "
        "She won the Nobel Prize twice: in physics in 1903 and in chemistry in 1911. "
        "Paris is the capital of France, and the river Seine flows through it."
    ),
    "unicode": (
        "A café in Montréal serves crêpes, croissants and coffee. Zoë and José meet there every Friday "
        "at 8:30 — naïve façades, smörgåsbord and 東京 (Tokyo) are on the menu 🙂, ﬁne ligatures too."
    ),
    "repeated": (
        "The cat sat on the mat. The CAT watched the cat, and the Cat slept. The dog saw the cat; "
        "the cat saw the dog. Cat, cat, CAT: the cat is everywhere near the mat."
    ),
    "spaces": "  The library   opens at nine\n\no'clock\tand closes at six,  except   on Sundays.  ",
    "long": LONG,
    # one word: fewer scored spans than candidates asked for, so 4.x's zero-score leftovers show
    "one_word": "Berlin",
}
QUESTIONS = {
    "short": ["Where do I live?", "What is my name?"],
    "paragraph": ["Where was Marie Curie born?", "When did she win the Nobel Prize in chemistry?"],
    "unicode": ["Where is the café?", "Who meets there every Friday?"],
    "repeated": ["What did the cat sit on?"],
    "spaces": ["When does the library open?"],
    "long": ["How tall is Mount Everest?", "Who was the first computer programmer?"],
    "one_word": ["Where do I live?"],
}
# Parameter sets tried on every question; the long context also gets small windows.
PARAMS = [
    {},
    {"top_k": 3},
    {"top_k": 5, "align_to_words": False},
    {"align_to_words": False},
    {"max_answer_len": 3, "top_k": 2},
    {"max_answer_len": 1, "top_k": 3},
    {"handle_impossible_answer": True},
    {"handle_impossible_answer": True, "top_k": 4},
    {"max_question_len": 4},
]
WINDOW_PARAMS = [
    {"max_seq_len": 64},
    {"max_seq_len": 64, "doc_stride": 16},
    {"max_seq_len": 48, "doc_stride": 20, "top_k": 3},
    {"max_seq_len": 40, "doc_stride": 8, "handle_impossible_answer": True, "top_k": 2},
    {"max_seq_len": 96, "doc_stride": 40, "max_answer_len": 4, "align_to_words": False, "top_k": 3},
    {"max_seq_len": 64, "doc_stride": 40, "top_k": 2},
]


def _cases() -> list[dict]:
    """Every (model, question, context, params) to record; batched inputs are lists."""
    cases = []
    for model in MODELS:
        for name, context in CONTEXTS.items():
            for question in QUESTIONS[name]:
                for params in PARAMS:
                    cases.append({"model": model, "question": question, "context": context, "params": params})
        for name in ("paragraph", "long", "unicode"):
            for params in WINDOW_PARAMS:
                question = QUESTIONS[name][0]
                cases.append({"model": model, "question": question, "context": CONTEXTS[name], "params": params})
        pairs = [(q, CONTEXTS[n]) for n in ("short", "paragraph", "unicode") for q in QUESTIONS[n]]
        batched = {"question": [q for q, _ in pairs], "context": [c for _, c in pairs]}
        cases.append({"model": model, **batched, "params": {}})
        cases.append({"model": model, **batched, "params": {"top_k": 2, "max_seq_len": 48, "doc_stride": 8}})
        cases.append({"model": model, "question": QUESTIONS["paragraph"], "context": CONTEXTS["paragraph"]})
        cases[-1]["params"] = {"top_k": 2}
        # a list of one pair: 4.x answered it with a bare dict
        cases.append({"model": model, "question": ["Where do I live?"], "context": [CONTEXTS["short"]], "params": {}})
    return cases


def build_models() -> None:
    """Write the three tiny models with transformers 5 (seeded: the same files every run)."""
    import torch
    from tokenizers import (
        ByteLevelBPETokenizer,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import (
        AlbertConfig,
        AlbertForQuestionAnswering,
        BertConfig,
        BertForQuestionAnswering,
        BertTokenizerFast,
        PreTrainedTokenizerFast,
        RobertaConfig,
        RobertaForQuestionAnswering,
    )

    corpus = [line for line in CORPUS.splitlines() if line] * 5
    tiny = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

    def save(model, tokenizer, name: str, generic: list[str] | None = None) -> None:
        torch.manual_seed(1)
        # the default init (std 0.02) gives near-equal logits; wider ones keep the span ranking unambiguous
        torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)
        folder = DATA / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if generic is not None:  # v5 writes "TokenizersBackend", which 4.x cannot load
            config_file = folder / "tokenizer_config.json"
            config = json.loads(config_file.read_text())
            config.update(tokenizer_class="PreTrainedTokenizerFast", model_input_names=generic)
            config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        logger.info("wrote %s", folder)

    # 1. BERT, lower-casing WordPiece over a written vocabulary (accents stripped by the normaliser)
    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-()—") + WORDPIECE_WORDS
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + ["##s", "##ed", "##ing", "##es", "##ly"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    # v5 takes the vocabulary itself; a `vocab_file=` is silently ignored there (every word becomes [UNK])
    bert_tok = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)
    bert = BertForQuestionAnswering(BertConfig(vocab_size=len(bert_tok), max_position_embeddings=512, **tiny))
    save(bert, bert_tok, "bert-wordpiece")

    # 2. RoBERTa, byte-level BPE trained here
    torch.manual_seed(0)
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(corpus, vocab_size=700, min_frequency=2, special_tokens=specials)
    bpe.post_processor = processors.RobertaProcessing(
        ("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")), trim_offsets=True
    )
    roberta_tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    roberta = RobertaForQuestionAnswering(
        RobertaConfig(
            vocab_size=len(roberta_tok),
            max_position_embeddings=514,
            pad_token_id=roberta_tok.pad_token_id,
            bos_token_id=roberta_tok.bos_token_id,
            eos_token_id=roberta_tok.eos_token_id,
            type_vocab_size=1,
            **tiny,
        )
    )
    save(roberta, roberta_tok, "roberta-bpe", generic=["input_ids", "attention_mask"])

    # 3. ALBERT, SentencePiece-style Unigram, padding on the left (so 4.x put the context first), short windows
    torch.manual_seed(0)
    unigram = Tokenizer(models.Unigram())
    unigram.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    unigram.decoder = decoders.Metaspace()
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    unigram.train_from_iterator(
        corpus, trainers.UnigramTrainer(vocab_size=500, special_tokens=specials, unk_token="<unk>")
    )
    cls_id, sep_id = unigram.token_to_id("[CLS]"), unigram.token_to_id("[SEP]")
    unigram.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    albert_tok = PreTrainedTokenizerFast(
        tokenizer_object=unigram,
        pad_token="<pad>",
        unk_token="<unk>",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        padding_side="left",
        model_max_length=128,
    )
    albert = AlbertForQuestionAnswering(
        AlbertConfig(
            vocab_size=len(albert_tok),
            embedding_size=16,
            max_position_embeddings=128,
            pad_token_id=albert_tok.pad_token_id,
            bos_token_id=cls_id,
            eos_token_id=sep_id,
            **tiny,
        )
    )
    save(albert, albert_tok, "albert-unigram-left", generic=["input_ids", "token_type_ids", "attention_mask"])


def make_golden() -> None:
    """Run transformers 4.x's question-answering pipeline on every case and write golden.json."""
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

    if not transformers.__version__.startswith("4."):
        sys.exit(f"golden answers come from transformers 4.x; this is {transformers.__version__}")
    torch.set_num_threads(1)  # tiny models: threads only add overhead
    pipes = {}
    for name in MODELS:
        model = AutoModelForQuestionAnswering.from_pretrained(DATA / name)
        tokenizer = AutoTokenizer.from_pretrained(DATA / name)
        pipes[name] = pipeline("question-answering", model=model, tokenizer=tokenizer)
    cases = _cases()
    for case in cases:
        case["expected"] = pipes[case["model"]](question=case["question"], context=case["context"], **case["params"])
    out = DATA / "golden.json"
    out.write_text(
        json.dumps({"transformers": transformers.__version__, "cases": cases}, indent=1, ensure_ascii=False) + "\n"
    )
    logger.info("wrote %d cases to %s", len(cases), out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["models", "golden"])
    args = parser.parse_args()
    if args.step == "models":
        build_models()
    else:
        make_golden()


if __name__ == "__main__":
    main()
