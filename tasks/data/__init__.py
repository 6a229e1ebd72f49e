"""Dataset loaders and their registry: ``load_dataset(name, ...)`` -> :class:`Dataset`.

Real datasets are read from a data root laid out as the public releases are
(``<root>/coat/``, ``<root>/open-bandit/``, ``<root>/yahoo-r3/``, optionally ``<root>/ml-100k/``).
Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from recause.tasks.config import Section

from recause.tasks.data.schema import Dataset, DatasetError, DatasetMeta, IdIndex

__all__ = ["DATASETS", "DataConfig", "Dataset", "DatasetError", "DatasetMeta", "IdIndex", "load_configured", "load_dataset"]

DATASETS = ("synthetic", "movielens-100k", "coat", "open-bandit", "yahoo-r3")


class DataConfig(Section):
    """Which dataset a run reads, and where the public releases live."""

    dataset: str = Field(
        "synthetic",
        description="Dataset name: synthetic, movielens-100k, coat, open-bandit, yahoo-r3, "
        "or dir:PATH (a folder with interactions/items/users as parquet or CSV).",
    )
    root: Path | None = Field(
        None,
        description="Folder holding the public datasets in their release layouts (coat/, "
        "open-bandit/, yahoo-r3/, ml-100k/). Defaults to $RECAUSE_DATA_DIR.",
    )
    movielens_path: Path | None = Field(
        None,
        description="MovieLens-100K folder (GroupLens u.data/u.item/u.user or RecBole atomic "
        "files). Default: <root>/ml-100k if present, else the recbole wheel's copy.",
    )
    open_bandit_campaign: Literal["all", "men", "women"] = Field("all", description="Open Bandit campaign folder.")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value in DATASETS or (value.startswith("dir:") and len(value) > 4):
            return value
        raise ValueError(f"unknown dataset {value!r}; expected one of {DATASETS} or dir:PATH")


def load_configured(data: DataConfig, world=None, seed: int = 0) -> Dataset:
    """:func:`load_dataset` for a :class:`DataConfig` (``world``: the synthetic world's config)."""
    return load_dataset(
        data.dataset,
        root=data.root,
        movielens_path=data.movielens_path,
        open_bandit_campaign=data.open_bandit_campaign,
        world=world,
        seed=seed,
    )


def _require_root(root: Path | None, name: str, folder: str) -> Path:
    if root is None:
        raise DatasetError(
            f"dataset {name!r} is read from a data root, and none is set: set data.root "
            f"(--set data.root=PATH) or RECAUSE_DATA_DIR to a folder that holds {folder}/."
        )
    path = Path(root) / folder
    if not path.is_dir():
        raise DatasetError(
            f"dataset {name!r} expected its files in {path}, which does not exist; "
            f"data.root is {root}. Place the public release there (see the README's data section)."
        )
    return path


def load_dataset(
    name: str,
    *,
    root: Path | None = None,
    movielens_path: Path | None = None,
    open_bandit_campaign: str = "all",
    world=None,  # recause.models.world.scm.WorldConfig; typed loosely to keep this import light
    seed: int = 0,
) -> Dataset:
    """Load dataset ``name`` (see :data:`recause.flows.config.DATASETS`, or ``dir:PATH``)."""
    if name == "synthetic":
        from recause.models.world.scm import WorldConfig
        from recause.tasks.data.synthetic import load_synthetic

        return load_synthetic(world or WorldConfig(), seed)
    if name == "movielens-100k":
        from recause.tasks.data.movielens import load_movielens

        if movielens_path is None and root is not None and (Path(root) / "ml-100k").is_dir():
            movielens_path = Path(root) / "ml-100k"
        return load_movielens(movielens_path)
    if name == "coat":
        from recause.tasks.data.coat import load_coat

        return load_coat(_require_root(root, name, "coat"))
    if name == "open-bandit":
        from recause.tasks.data.open_bandit import load_open_bandit

        return load_open_bandit(_require_root(root, name, "open-bandit"), open_bandit_campaign)
    if name == "yahoo-r3":
        from recause.tasks.data.yahoo import load_yahoo_r3

        return load_yahoo_r3(_require_root(root, name, "yahoo-r3"))
    if name.startswith("dir:"):
        from recause.tasks.data.directory import load_directory

        return load_directory(Path(name[4:]).expanduser())
    raise DatasetError(f"unknown dataset {name!r}; expected synthetic, movielens-100k, coat, open-bandit, yahoo-r3 or dir:PATH")
