"""Tokenizer training as a job of the app: uploads staged safely, the config written as YAML, the child process
started (``python -m services train-tokenizer CONFIG.yaml``), and the result zipped for download.
"""

from __future__ import annotations

from pathlib import Path

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.core.owners import safe_name
from services.tokenizers.corpus import TABLE_SUFFIXES, TEXT_SUFFIXES, CorpusError, check_text_file, corpus_files
from services.tokenizers.training import TokenizerTrainConfig


def stage_uploads(paths: list[str], owner: str, purpose: str = "tokenizer") -> list[str]:
    """Copy uploaded text or table files (checked for type, size and content, names sanitized) into the owner's
    upload folder."""
    from services.core.uploads import stage

    def content(path: Path) -> None:
        if path.suffix.lower() != ".parquet":
            check_text_file(path)
        elif path.open("rb").read(4) != b"PAR1":
            raise CorpusError(f"'{path.name}' is not a Parquet file, whatever its name says.")

    kind = "a file type the trainer reads: use .txt, .md, .csv, .tsv, .json, .jsonl or .parquet"
    return stage(paths, owner, purpose, TEXT_SUFFIXES + TABLE_SUFFIXES, kind, check=content,
                 name=lambda stem: safe_name(stem, "corpus"), error=CorpusError)  # fmt: skip


def start_training(manager, owner: str, config: TokenizerTrainConfig) -> str:
    """Check the config now (a clear error at once beats a failed job), then train as a child-process job."""
    import uuid

    import yaml

    from services.core.owners import owner_dir
    from services.tokenizers.analysis import tokenizers_root

    if (tokenizers_root(owner) / config.name).exists():
        raise PlaygroundError(f"You already have a tokenizer called '{config.name}'. Pick another name.")
    if config.corpus != "dataset":
        corpus_files(config)
    folder = owner_dir(get_settings().home / "uploads", owner) / "tokenizer-configs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config.name}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
    return manager.submit_command(
        "tokenizer-training",
        owner,
        ["train-tokenizer", "--owner", owner, "--", str(path)],
        title=f"Train tokenizer {config.name} ({config.model}, {config.vocab_size:,})",
        config=config.to_dict(),
        needs_gpu=False,
    )


def load_config(path: str | Path) -> TokenizerTrainConfig:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise PlaygroundError(f"The tokenizer config '{Path(path).name}' could not be read: {err}") from err
    if not isinstance(data, dict):
        raise PlaygroundError("A tokenizer config is a YAML mapping such as `name: my-bpe`.")
    return TokenizerTrainConfig.from_dict(data)


def archive(tokenizer_id: str, owner: str) -> Path:
    """A zip of a tokenizer trained here (tokenizer.json and friends), in a private temporary folder."""
    import shutil
    import tempfile

    from services.tokenizers.analysis import trained_folder

    folder = trained_folder(tokenizer_id, owner)
    out = Path(tempfile.mkdtemp(prefix="playground-tokenizer-")) / folder.name
    return Path(shutil.make_archive(str(out), "zip", root_dir=folder.parent, base_dir=folder.name))
