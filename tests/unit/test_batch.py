"""Batch inference over uploaded files: reading CSV/JSONL/TXT safely, and the job that writes results."""

from __future__ import annotations

import csv
import json

import pytest

from services.core.errors import PlaygroundError
from services.pipelines import batch

ALICE = "anon:alice"


def write(tmp_path, name, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_csv_with_bom_semicolons_and_quoted_newlines(tmp_path):
    path = write(tmp_path, "reviews.csv", '\ufeffid;text\n1;"great\nfilm"\n2;awful\n')
    columns, rows = batch.read_rows(path)
    assert columns == ["id", "text"]
    assert rows == [{"id": "1", "text": "great\nfilm"}, {"id": "2", "text": "awful"}]


def test_jsonl_json_and_txt(tmp_path):
    assert batch.read_rows(write(tmp_path, "a.jsonl", '{"text": "a"}\n\n{"text": "b"}\n'))[1] == [
        {"text": "a"},
        {"text": "b"},
    ]
    assert batch.read_rows(write(tmp_path, "a.json", json.dumps([{"text": "x"}])))[0] == ["text"]
    assert batch.read_rows(write(tmp_path, "a.txt", "one\n\n two \n"))[1] == [{"text": "one"}, {"text": "two"}]


@pytest.mark.parametrize(
    ("name", "data", "sentence"),
    [
        ("empty.csv", "text\n", "no rows"),
        ("blank.txt", "\n\n", "no rows"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("latin.csv", "text\ncaf\xe9 cr\xe8me\n".encode("latin-1"), "not UTF-8"),
        ("bad.jsonl", '{"text": "a"}\nnot json\n', "not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "JSON object"),
        ("data.xlsx", b"PK\x03\x04", "not a file type"),
    ],
)
def test_bad_files_are_explained(tmp_path, name, data, sentence):
    with pytest.raises(PlaygroundError, match=sentence):
        batch.read_rows(write(tmp_path, name, data))


def test_missing_or_empty_column(tmp_path):
    columns, rows = batch.read_rows(write(tmp_path, "r.csv", "review,stars\n,5\n,3\n"))
    with pytest.raises(PlaygroundError, match=r"no column 'text'.*review, stars"):
        batch.check_column(columns, rows, "text")
    with pytest.raises(PlaygroundError, match="empty in every row"):
        batch.check_column(columns, rows, "review")


def test_a_thousand_rows_run_as_a_job_and_come_back_as_csv(manager, tmp_path, tiny_models):
    lines = ["text"] + [f"the movie number {i} was very good" for i in range(1000)]
    path = write(tmp_path, "many.csv", "\n".join(lines) + "\n")
    job_id = batch.start_batch(manager, ALICE, "sentiment-analysis", str(tiny_models["bert-classifier"]), path, "text")
    record = manager.wait(job_id, timeout=300)
    assert record.status == "succeeded", record.error
    assert record.result["rows"] == 1000 and record.progress == 1.0
    out = record.artifacts[0]["path"]
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1000 and rows[0]["text"] == "the movie number 0 was very good"
    assert {r["label"] for r in rows} <= {"NEGATIVE", "POSITIVE"} and all(0 <= float(r["score"]) <= 1 for r in rows)


def test_batch_rejects_bad_requests_before_starting(manager, tmp_path, tiny_models):
    path = write(tmp_path, "r.csv", "review\ngood\n")
    model = str(tiny_models["bert-classifier"])
    with pytest.raises(PlaygroundError, match="no column 'text'"):
        batch.start_batch(manager, ALICE, "sentiment-analysis", model, path, "text")
    with pytest.raises(PlaygroundError, match="cannot run over a file"):
        batch.start_batch(manager, ALICE, "feature-extraction", model, path, "review")
    assert manager.list(ALICE) == []


def test_zero_shot_batch_on_an_embedding_model(manager, tmp_path, tiny_models):
    path = write(tmp_path, "z.txt", "alice went to paris\nthe food was bad\n")
    job_id = batch.start_batch(manager, ALICE, "zero-shot-classification", str(tiny_models["bert-encoder"]), path,
                               "text", {"candidate_labels": ["city", "food"]})  # fmt: skip
    record = manager.wait(job_id, timeout=120)
    assert record.status == "succeeded", record.error


def test_one_row_fill_mask_and_gold_labels_kept(manager, tmp_path, tiny_models):
    path = write(tmp_path, "m.csv", "text,label\nparis is the [MASK] of france,capital\n")
    job_id = batch.start_batch(manager, ALICE, "fill-mask", str(tiny_models["bert-mlm"]), path, "text")
    record = manager.wait(job_id, timeout=120)
    assert record.status == "succeeded", record.error
    with open(record.artifacts[0]["path"], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["label"] == "capital", "the user's own column is kept"
    assert set(rows[0]) == {"text", "label", "token", "score"}


def test_a_predicted_label_never_overwrites_the_gold_label(manager, tmp_path, tiny_models):
    path = write(tmp_path, "g.csv", "text,label\ngood film,POSITIVE\nbad film,NEGATIVE\n")
    job_id = batch.start_batch(manager, ALICE, "text-classification", str(tiny_models["bert-classifier"]), path,
                               "text")  # fmt: skip
    record = manager.wait(job_id, timeout=120)
    with open(record.artifacts[0]["path"], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["POSITIVE", "NEGATIVE"]
    assert {"predicted_label", "score"} <= set(rows[0])
