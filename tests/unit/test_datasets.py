"""Data for fine-tuning: the bundled samples, awkward files read right, bad files explained, the data report and the
stratified split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from services.data.report import analyze, histogram
from services.data.sources import DatasetError, describe, load, sample_ids, split


def test_the_bundled_samples_are_there_and_big_enough():
    assert set(sample_ids()) == {
        "samples/sentiment",
        "samples/ner",
        "samples/summaries",
        "samples/stories",
        "samples/answerable-sentences",
    }
    sentiment = load("samples/sentiment")
    assert sentiment["train"].num_rows >= 800 and sentiment["test"].num_rows >= 200
    counts = Counter(sentiment["train"]["label"])
    assert set(counts) == {"positive", "negative"} and abs(counts["positive"] - counts["negative"]) <= 10
    train_texts = {t.lower() for t in sentiment["train"]["text"]}
    assert not train_texts & {t.lower() for t in sentiment["test"]["text"]}  # the test split is held back
    ner = load("samples/ner")["train"]
    assert all(len(r["tokens"]) == len(r["ner_tags"]) for r in ner)
    assert {t.split("-")[-1] for r in ner for t in r["ner_tags"]} == {"O", "PER", "ORG", "LOC", "MISC"}
    assert load("samples/summaries")["train"].column_names == ["text", "summary"]
    assert load("samples/stories")["train"].num_rows >= 40


def test_describe_gives_types_rows_and_the_suggested_columns():
    info = describe("samples/ner")
    assert {"name": "tokens", "type": "list of text"} in info["columns"]
    assert info["suggested"] == {"text_column": "tokens", "label_column": "ner_tags"}
    assert len(info["rows"]) == 20 and info["splits"]["test"] == 100


def test_a_csv_with_a_bom_semicolons_and_quoted_newlines_is_read_right(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes('\ufefftext;label\n"first line\nsecond line; still text";positive\nplain;negative\n'.encode())
    train = load(str(path))["train"]
    assert train.column_names == ["text", "label"]
    assert train[0] == {"text": "first line\nsecond line; still text", "label": "positive"}


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.csv", b"", "empty"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text file"),
        ("latin.txt", "caf\xe9 cr\xe8me".encode("latin-1") * 10, "not UTF-8"),
        ("fake.parquet", b"text,label\nhi,1\n", "not a Parquet file"),
        ("fake.json", b"text,label\nhi,1\n", "not JSON"),
        ("data.xlsx", b"PK\x03\x04", "not a data file"),
    ],
)
def test_files_that_are_not_what_they_say_are_refused(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=words):
        load(str(path))


def test_a_header_only_csv_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(DatasetError, match="no rows"):
        load(str(path))


def test_hub_datasets_need_the_hub(settings):
    with pytest.raises(DatasetError, match="offline"):
        load("stanfordnlp/imdb")


def test_the_report_counts_labels_gaps_and_duplicates(tmp_path, tiny_models):
    path = tmp_path / "r.csv"
    path.write_text("text,label\ngood,pos\ngood,pos\nbad,neg\n,neg\nfine,\n" + "long " * 60 + ",pos\n")
    report = analyze(
        str(path), "text-classification", "text", "label", model=str(tiny_models["bert-encoder"]), max_length=16
    )
    assert report["rows"] == 6 and report["empty"] == 1 and report["duplicates"] == 1 and report["missing_labels"] == 1
    assert {r["label"]: r["count"] for r in report["labels"]} == {"neg": 2, "pos": 3}
    assert report["lengths"]["max"] > 16 and 0 < report["lengths"]["truncated_share"] < 1
    assert sum(b["count"] for b in report["lengths"]["histogram"]) == 6
    assert any("left out" in w for w in report["warnings"])


@pytest.mark.parametrize(
    ("content", "task", "words"),
    [
        ("text,label\na,x\nb,x\nc,x\n", "text-classification", "same label"),
        ("text,label\n12,x\n3.5,y\n7,x\n", "text-classification", "holds numbers"),
        ("text,score\na,high\nb,low\n", "text-regression", "no numbers"),
    ],
)
def test_data_that_cannot_train_the_task_is_a_sentence(tmp_path, content, task, words):
    path = tmp_path / "d.csv"
    path.write_text(content)
    label = content.split("\n")[0].split(",")[1]
    with pytest.raises(DatasetError, match=words):
        analyze(str(path), task, "text", label)


def test_a_misnamed_column_is_named(tmp_path):
    with pytest.raises(DatasetError, match="Did you mean 'label'"):
        analyze("samples/sentiment", "text-classification", "text", "labels")


def test_the_split_is_seeded_and_stratified():
    data = load("samples/sentiment")
    train, held = split(data, 0.2, "label", seed=1)
    again, _ = split(data, 0.2, "label", seed=1)
    assert train["text"] == again["text"] and train.num_rows + held.num_rows == data["train"].num_rows
    counts = Counter(held["label"])
    assert abs(counts["positive"] - counts["negative"]) <= 1 and held.num_rows == round(0.2 * data["train"].num_rows)
    _, named = split(data, "test", "label")
    assert named.num_rows == data["test"].num_rows
    with pytest.raises(DatasetError, match="no split 'validation'"):
        split(data, "validation")
    with pytest.raises(DatasetError, match="between 0 and 1"):
        split(data, 1.5)


def test_histogram_bins_cover_every_length():
    bins = histogram([1, 2, 3, 50, 51, 400])
    assert sum(b["count"] for b in bins) == 6 and bins[0]["start"] == 0 and bins[-1]["end"] > 400


def test_two_million_rows_are_read_without_filling_memory(tmp_path):
    import psutil

    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("text,label\n")
        lines = "a short review of something,positive\nanother one,negative\n"
        for _ in range(40):
            handle.write(lines * 25_000)
    before = psutil.Process().memory_info().rss
    data = load(str(path))
    report = analyze(str(path), "text-classification", "text", "label")
    grown = psutil.Process().memory_info().rss - before
    assert data["train"].num_rows == 2_000_000 and not report["exact"]
    assert grown < 600 * 2**20, f"memory grew by {grown / 2**20:.0f} MB"


def test_json_lines_with_lists_keep_their_lists(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(json.dumps({"tokens": ["A", "b"], "ner_tags": ["B-PER", "O"]}) for _ in range(3)))
    assert load(str(path))["train"][0] == {"tokens": ["A", "b"], "ner_tags": ["B-PER", "O"]}
    assert Path(path).exists()
