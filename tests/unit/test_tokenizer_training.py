"""Training tokenizers: BPE, WordPiece and Unigram on the bundled corpus and on uploaded files, corpora that
cannot be used (said in a sentence), config checks, uploads, the training job, the zip download and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from services.core.config import get_settings
from services.core.errors import ModelNotFound, PlaygroundError
from services.core.owners import owner_dir
from services.tokenizers.analysis import analyze, catalog, load_tokenizer, tokenize, tokenizers_root
from services.tokenizers.jobs import archive, load_config, stage_uploads, start_training
from services.tokenizers.tools import decode, round_trip
from services.tokenizers.training import (
    CorpusError,
    TokenizerTrainConfig,
    train,
)

ROOT = Path(__file__).resolve().parents[2]
OWNER, OTHER = "cli:trainer", "anon:other"
SIZES = {"bpe": 500, "wordpiece": 500, "unigram": 800}  # Unigram needs room for the corpus's ~690 characters
KINDS = {"bpe": "BPE", "wordpiece": "WordPiece", "unigram": "Unigram"}
SMALL_TEXT = "the cat sat on the mat and the dog ran to the park\nsnow falls on the old town in winter\n" * 40


@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory):
    """One PLAYGROUND_HOME for the module, so tokenizers trained once serve every test."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PLAYGROUND_HOME", str(tmp_path_factory.mktemp("tokenizer-training") / "home"))
    mp.delenv("PLAYGROUND_JOB_ID", raising=False)
    get_settings.cache_clear()
    yield get_settings().home
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained(home) -> dict[str, dict]:
    """BPE, WordPiece and Unigram trained once on the bundled corpus for OWNER."""
    out = {}
    for model, size in SIZES.items():
        config = TokenizerTrainConfig(name=f"bundled-{model}", model=model, vocab_size=size)
        out[model] = train(config, tokenizers_root(OWNER) / config.name)
    return out


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


def folder_of(summary: dict) -> Path:
    return tokenizers_root(OWNER) / summary["name"]


# ---- training on the bundled corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(SIZES))
def test_each_model_trains_on_the_bundled_corpus_and_loads_with_autotokenizer(trained, model):
    from transformers import AutoTokenizer

    summary = trained[model]
    assert summary["id"] == f"tokenizer:bundled-{model}" and summary["kind"] == KINDS[model]
    assert summary["requested_vocab_size"] == SIZES[model]
    # WordPiece keeps the corpus's whole alphabet, so a small vocabulary comes out larger, and the summary says so.
    assert ("note" in summary) == (summary["vocab_size"] > SIZES[model] * 1.1)
    assert summary["vocab_size"] >= SIZES[model]
    assert summary["corpus"]["files"] >= 10 and summary["corpus"]["characters"] > 100_000
    folder = folder_of(summary)
    assert {"tokenizer.json", "tokenizer_config.json", "playground-tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert json.loads((folder / "playground-tokenizer.json").read_text())["vocab_size"] == summary["vocab_size"]

    hf = AutoTokenizer.from_pretrained(str(folder))
    assert len(hf) == summary["vocab_size"] == load_tokenizer(summary["id"], OWNER).vocab_size
    text = "The travellers cooked a stew, café au lait and 日本 food."
    tokens = tokenize(summary["id"], text, owner=OWNER)
    assert [t["id"] for t in tokens] == hf(text)["input_ids"]
    assert all(0 <= t["id"] < summary["vocab_size"] for t in tokens)
    assert load_tokenizer(summary["id"], OWNER).kind == KINDS[model]


def test_the_trained_tokenizers_have_the_usual_special_tokens(trained):
    def specials(model: str) -> list[str]:
        return [t["token"] for t in tokenize(trained[model]["id"], "hello world", owner=OWNER) if t["special"]]

    assert specials("wordpiece") == ["[CLS]", "[SEP]"]
    assert specials("unigram") == ["</s>"]
    assert specials("bpe") == []
    assert load_tokenizer(trained["wordpiece"]["id"], OWNER).hf.pad_token == "[PAD]"
    assert load_tokenizer(trained["unigram"]["id"], OWNER).hf.unk_token == "<unk>"


def test_byte_level_bpe_round_trips_any_text(trained):
    text = "Héllo 👩‍💻 🇫🇷 日本語 — never seen ☃"
    assert round_trip(trained["bpe"]["id"], text, owner=OWNER)["exact"] is True
    ids = [t["id"] for t in tokenize(trained["bpe"]["id"], text, owner=OWNER)]
    assert decode(trained["bpe"]["id"], ids, owner=OWNER)["text"] == text


def test_trained_tokenizers_are_listed_for_their_owner_only(trained):
    mine = {e.id: e for e in catalog(OWNER)}
    for model, summary in trained.items():
        entry = mine[summary["id"]]
        assert entry.source == "trained" and entry.available and entry.kind == KINDS[model]
        assert f"{summary['vocab_size']} tokens" in entry.description
    theirs = {e.id for e in catalog(OTHER)}
    assert not theirs & {s["id"] for s in trained.values()}
    with pytest.raises(ModelNotFound, match="You have no tokenizer called 'bundled-bpe'"):
        tokenize("tokenizer:bundled-bpe", "hi", owner=OTHER)


# ---- byte fallback --------------------------------------------------------------------------------------------


def test_byte_fallback_unigram_spells_an_unseen_character_in_bytes(small_corpus):
    def make(name: str, byte_fallback: bool) -> str:
        config = TokenizerTrainConfig(
            name=name,
            model="unigram",
            vocab_size=400,
            byte_fallback=byte_fallback,
            corpus="files",
            files=[str(small_corpus)],
        )
        return train(config, tokenizers_root(OWNER) / name)["id"]

    with_bytes, without = make("uni-bytes", True), make("uni-plain", False)
    text = "snow ☃ falls"
    assert "☃" not in SMALL_TEXT

    tokens = tokenize(with_bytes, text, owner=OWNER)
    unk = load_tokenizer(with_bytes, OWNER).unk_id
    assert [t["token"] for t in tokens if t["token"].startswith("<0x")] == ["<0xE2>", "<0x98>", "<0x83>"]
    assert unk not in [t["id"] for t in tokens]
    pieces = [t for t in tokens if t["token"].startswith("<0x")]
    assert {(t["start"], t["end"]) for t in pieces} == {(5, 6)}, "the byte pieces point at the snowman"
    view = analyze(with_bytes, text, owner=OWNER)
    assert view["counts"]["unknown"] == 0
    assert [t["readable"] for t in view["tokens"] if t["token"].startswith("<0x")] == ["<E2>", "<98>", "<83>"]
    assert any(s <= 5 and e >= 6 and len(idx) >= 3 for s, e, idx in view["groups"]), "one group for the snowman"
    assert "☃" in decode(with_bytes, [t["id"] for t in tokens], owner=OWNER)["text"]

    plain = tokenize(without, text, owner=OWNER)
    assert not any(t["token"].startswith("<0x") for t in plain)
    assert load_tokenizer(without, OWNER).unk_id in [t["id"] for t in plain]
    assert analyze(without, text, owner=OWNER)["counts"]["unknown"] == 1


# ---- corpora that cannot be used ------------------------------------------------------------------------------


def _make(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("filename", "content", "fragment"),
    [
        ("empty.txt", "   \n\n\t \n", "The training text is empty"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" * 20, "'photo.txt' is not a text file"),
        ("latin1.txt", "café olé résumé\n".encode("latin-1") * 20, "'latin1.txt' is not UTF-8 text"),
        ("late.txt", b"plain ascii line\n" * 5000 + "café\n".encode("latin-1"), "not UTF-8 text past its beginning"),
        ("slides.pdf", b"%PDF-1.4 hello", "'slides.pdf' is not a file type the trainer reads"),
        ("table.csv", "id,body\n1,hello world\n", "'table.csv' has no column 'text'. Its columns: id, body."),
        ("records.jsonl", '{"body": "hello"}\n', "The records in 'records.jsonl' have no field 'text'"),
        ("broken.jsonl", '{"text": "hello"}\nnot json\n', "Line 2 of 'broken.jsonl' is not valid JSON"),
        ("broken.json", "[{", "'broken.json' is not valid JSON"),
    ],
)
def test_unusable_corpora_are_explained(tmp_path, filename, content, fragment):
    path = _make(tmp_path / filename, content)
    config = TokenizerTrainConfig(name="refused", model="bpe", vocab_size=300, corpus="files", files=[str(path)])
    dest = tokenizers_root(OWNER) / "refused"
    with pytest.raises(CorpusError) as err:
        train(config, dest)
    assert fragment in str(err.value)
    assert not dest.exists() and "refused" not in {e.id for e in catalog(OWNER)}


def test_a_missing_file_is_explained(tmp_path):
    config = TokenizerTrainConfig(name="gone", corpus="files", files=[str(tmp_path / "gone.txt")])
    with pytest.raises(CorpusError, match=re.escape("'gone.txt' is not there any more")):
        train(config, tokenizers_root(OWNER) / "gone")


def test_a_corpus_too_small_for_the_vocabulary_gets_a_note(small_corpus):
    config = TokenizerTrainConfig(
        name="too-big", model="bpe", vocab_size=5000, corpus="files", files=[str(small_corpus)]
    )
    summary = train(config, tokenizers_root(OWNER) / "too-big")
    assert summary["vocab_size"] < 5000
    assert "only had enough material" in summary["note"] and "5,000" in summary["note"]
    assert tokenize("tokenizer:too-big", "the cat", owner=OWNER)


def test_a_vocabulary_smaller_than_the_alphabet_is_refused_in_a_sentence():
    config = TokenizerTrainConfig(name="tiny-unigram", model="unigram", vocab_size=300)
    with pytest.raises(CorpusError, match="vocabulary of 300"):
        train(config, tokenizers_root(OWNER) / "tiny-unigram")
    assert not (tokenizers_root(OWNER) / "tiny-unigram").exists()


def test_a_vocabulary_smaller_than_the_alphabet_gets_the_right_advice():
    config = TokenizerTrainConfig(name="tiny-unigram-2", model="unigram", vocab_size=300)
    with pytest.raises(CorpusError) as err:
        train(config, tokenizers_root(OWNER) / "tiny-unigram-2")
    assert "smaller vocabulary" not in str(err.value)


# ---- names and settings ---------------------------------------------------------------------------------------


def test_a_duplicate_name_is_refused_and_the_first_tokenizer_is_kept(trained):
    summary = trained["bpe"]
    folder = folder_of(summary)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = TokenizerTrainConfig(name=summary["name"], model="wordpiece", vocab_size=300)
    with pytest.raises(PlaygroundError, match="You already have a tokenizer called 'bundled-bpe'"):
        train(again, folder)
    with pytest.raises(PlaygroundError, match="You already have a tokenizer called 'bundled-bpe'"):
        start_training(None, OWNER, again)  # refused before any job is made
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert load_tokenizer(summary["id"], OWNER).kind == "BPE"


@pytest.mark.parametrize(
    ("settings_", "fragment"),
    [
        ({"name": "x", "vocab_size": 10}, "between 50 and 500,000"),
        ({"name": "x", "vocab_size": 1_000_000}, "between 50 and 500,000"),
        ({"name": "my tokenizer"}, "cannot be a tokenizer name"),
        ({"name": "a/b"}, "cannot be a tokenizer name"),
        ({"name": "../escape"}, "cannot be a tokenizer name"),
        ({"name": ""}, "cannot be a tokenizer name"),
        ({"name": "x", "model": "sentencepiece"}, "must be one of bpe, wordpiece, unigram"),
        ({"name": "x", "normalization": "upper"}, "Normalisation must be one of"),
        ({"name": "x", "pre_tokenizer": "split"}, "pre-tokenizer must be one of"),
        ({"name": "x", "special_tokens": ["<s>", "<s>"]}, "listed twice"),
        ({"name": "x", "corpus": "files"}, "at least one text file"),
        ({"name": "x", "corpus": "web"}, "must be 'bundled', 'files' or 'dataset'"),
        ({"name": "x", "corpus": "dataset"}, "Hub dataset id"),
    ],
)
def test_bad_config_values_raise_value_error(settings_, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        TokenizerTrainConfig(**settings_)


def test_config_defaults_and_yaml(tmp_path):
    config = TokenizerTrainConfig(name="defaults", model="WordPiece")
    assert (config.model, config.normalization, config.pre_tokenizer) == ("wordpiece", "bert", "bert")
    assert config.special_tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and config.unk_token == "[UNK]"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert load_config(path) == config
    with pytest.raises(ValueError, match=r"Unknown setting\(s\) in the tokenizer config: oops"):
        TokenizerTrainConfig.from_dict({"name": "x", "oops": 1})
    _make(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(PlaygroundError, match="YAML mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(PlaygroundError, match=re.escape("'missing.yaml' could not be read")):
        load_config(tmp_path / "missing.yaml")


# ---- table corpora --------------------------------------------------------------------------------------------

ROWS = ["the first row of text", "a second row, with a comma", "and a third one"]


def _table(path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        lines = ["id,body"] + [f'{i},"{r}"' for i, r in enumerate(ROWS)]
        return _make(path, "\n".join(lines) + "\n")
    if suffix == ".tsv":
        return _make(path, "id\tbody\n" + "".join(f"{i}\t{r}\n" for i, r in enumerate(ROWS)))
    if suffix == ".jsonl":
        return _make(path, "".join(json.dumps({"id": i, "body": r}) + "\n" for i, r in enumerate(ROWS)))
    if suffix == ".json":
        return _make(path, json.dumps([{"id": i, "body": r} for i, r in enumerate(ROWS)]))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": list(range(len(ROWS))), "body": ROWS}), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_a_table_column_is_a_corpus(tmp_path, suffix):
    path = _table(tmp_path / f"table{suffix}")
    name = f"table-{suffix[1:]}"
    config = TokenizerTrainConfig(
        name=name, model="wordpiece", vocab_size=100, corpus="files", files=[str(path)], text_column="body"
    )
    summary = train(config, tokenizers_root(OWNER) / name)
    assert summary["corpus"]["lines"] == len(ROWS) and summary["corpus"]["text_lines"] == len(ROWS)
    assert summary["corpus"]["characters"] == sum(len(r) for r in ROWS)
    assert "note" in summary  # three rows cannot fill 100 tokens
    tokens = tokenize(f"tokenizer:{name}", "the second row", owner=OWNER)
    assert "[UNK]" not in [t["token"] for t in tokens] and tokens[0]["token"] == "[CLS]"


# ---- uploads --------------------------------------------------------------------------------------------------


def test_stage_uploads_copies_files_under_safe_names_into_the_owners_folder(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    _make(tmp_path / "evil name.txt", "hello there\n")
    _make(tmp_path / "..hidden.md", "# notes\n")
    _make(tmp_path / "ünï cødé.csv", "text\nhi\n")
    staged = stage_uploads(
        [str(nested / ".." / ".." / "evil name.txt"), str(tmp_path / "..hidden.md"), str(tmp_path / "ünï cødé.csv")],
        OWNER,
    )
    uploads = owner_dir(get_settings().home / "uploads", OWNER).resolve()
    assert [Path(p).name for p in staged] == ["evil-name.txt", "hidden.md", "uni-cde.csv"]
    for p in staged:
        assert Path(p).resolve().is_relative_to(uploads) and Path(p).is_file()
    assert Path(staged[0]).read_text() == "hello there\n"
    assert not (tmp_path / "evil-name.txt").exists()


@pytest.mark.parametrize(
    ("filename", "content", "fragment"),
    [
        ("tool.exe", "MZ", "'tool.exe' is not a file type the trainer reads"),
        ("nothing.txt", "", "'nothing.txt' is empty"),
        ("blob.txt", b"ab\x00\x00cd", "'blob.txt' is not a text file"),
        ("latin1.txt", "olé, café\n".encode("latin-1") * 20, "'latin1.txt' is not UTF-8 text"),
    ],
)
def test_stage_uploads_refuses_bad_files(tmp_path, filename, content, fragment):
    with pytest.raises(CorpusError) as err:
        stage_uploads([str(_make(tmp_path / filename, content))], OWNER)
    assert fragment in str(err.value)


def test_stage_uploads_refuses_a_short_non_utf8_file(tmp_path):
    with pytest.raises(CorpusError, match="not UTF-8"):
        stage_uploads([str(_make(tmp_path / "short.txt", "olé\n".encode("latin-1")))], OWNER)


def test_stage_uploads_refuses_files_above_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 2 * 2**20)
    big = _make(tmp_path / "big.txt", "x" * (3 * 2**20))
    with pytest.raises(CorpusError) as err:
        stage_uploads([str(big)], OWNER)
    assert str(err.value) == "'big.txt' is 3.0 MB; files up to 2.0 MB are accepted here."
    assert stage_uploads([str(_make(tmp_path / "fine.txt", "x" * 1000))], OWNER)


def test_the_size_refusal_never_quotes_the_same_size_as_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 2**20)
    big = _make(tmp_path / "big.txt", "x" * int(1.3 * 2**20))
    with pytest.raises(CorpusError) as err:
        stage_uploads([str(big)], OWNER)
    size, limit = re.findall(r"([\d.]+) MB", str(err.value))
    assert size != limit, str(err.value)


# ---- the training job, the download and the CLI ---------------------------------------------------------------


def test_start_training_runs_a_child_process_job(manager, tmp_path):
    owner = "anon:jobber"
    config = TokenizerTrainConfig(name="job-bpe", model="bpe", vocab_size=300)
    job_id = start_training(manager, owner, config)
    record = manager.wait(job_id, timeout=120)
    assert record.status == "succeeded", (record.status, record.error, record.message)
    assert record.kind == "tokenizer-training" and record.owner == owner
    assert record.result["id"] == "tokenizer:job-bpe" and record.result["kind"] == "BPE"
    assert tokenize("tokenizer:job-bpe", "the tokenizer", owner=owner)
    assert "tokenizer:job-bpe" in {e.id for e in catalog(owner)}
    with pytest.raises(PlaygroundError, match="You already have a tokenizer called 'job-bpe'"):
        start_training(manager, owner, config)
    missing = TokenizerTrainConfig(name="job-missing", corpus="files", files=[str(tmp_path / "gone.txt")])
    with pytest.raises(CorpusError, match="not there any more"):
        start_training(manager, owner, missing)
    assert [r.id for r in manager.list(owner)] == [job_id], "refused configs start no job"


def test_archive_zips_a_trained_tokenizer(trained):
    summary = trained["unigram"]
    path = archive(summary["id"], OWNER)
    assert path.suffix == ".zip" and path.is_file()
    assert not path.resolve().is_relative_to(get_settings().home)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert f"{summary['name']}/tokenizer.json" in names
        assert f"{summary['name']}/playground-tokenizer.json" in names
        spec = json.loads(zf.read(f"{summary['name']}/tokenizer.json"))
    assert spec["model"]["type"] == "Unigram"
    with pytest.raises(PlaygroundError, match="Only tokenizers trained here"):
        archive("all-minilm-l6-v2", OWNER)
    with pytest.raises(ModelNotFound):
        archive(summary["id"], OTHER)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=300,
    )


def test_cli_trains_a_tokenizer_from_yaml(tmp_path):
    config = tmp_path / "wp.yaml"
    config.write_text(yaml.safe_dump({"name": "cli-wordpiece", "model": "wordpiece", "vocab_size": 400}))
    done = cli("train-tokenizer", str(config), "--owner", "cli:someone")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["id"] == "tokenizer:cli-wordpiece" and summary["kind"] == "WordPiece"
    assert summary["config"]["vocab_size"] == 400
    assert tokenize("tokenizer:cli-wordpiece", "hello", owner="cli:someone")[0]["token"] == "[CLS]"
    listed = cli("tokenizers", "--owner", "cli:someone")
    assert listed.returncode == 0, listed.stderr
    entries = {e["id"]: e for e in json.loads(listed.stdout)}
    assert entries["tokenizer:cli-wordpiece"]["source"] == "trained"
    assert {"all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo"} <= set(entries)
    again = cli("train-tokenizer", str(config), "--owner", "cli:someone")
    assert again.returncode == 2 and "Error: You already have a tokenizer called 'cli-wordpiece'" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_tokenize_prints_the_contract_and_mistakes_exit_2():
    done = cli("tokenize", "--tokenizer", "all-minilm-l6-v2", "--text", "Hi")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"id": 101, "token": "[CLS]", "start": 0, "end": 0, "special": True},
        {"id": 7632, "token": "hi", "start": 0, "end": 2, "special": False},
        {"id": 102, "token": "[SEP]", "start": 2, "end": 2, "special": True},
    ]
    decoded = cli("decode", "--tokenizer", "all-minilm-l6-v2", "--ids", "101, 7632, 102", "--skip-special-tokens")
    assert decoded.returncode == 0, decoded.stderr
    assert json.loads(decoded.stdout)["text"] == "hi"
    bad = cli("tokenize", "--tokenizer", "what is this ???", "--text", "Hi")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("Error:") and "is not a tokenizer this playground knows" in bad.stderr
    assert "Traceback" not in bad.stderr
