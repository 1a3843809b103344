"""Files that ship inside the package (core/assets): the default config, the presets' files, the samples and the
guide's eight toy pairs. Found from the package's own location, never from the working directory, so every command
works from any folder and from an installed wheel (pyproject's package-data). In a checkout, `assets/` at the root
links here, so the paths README shows (`assets/configs/default.yaml`) work too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CONFIGS = ASSETS / "configs"
SAMPLES = ASSETS / "samples"
DEFAULT_CONFIG = CONFIGS / "default.yaml"
TOY_DATASET = ASSETS / "toy" / "embedding_dataset.jsonl"  # the guide's step 1 file, for `toy_embedding_dataset`
# The names under which the guide's toy data is found without a dataset_path: the guide's step-3 name and the schema's
# default label (the file's stem).
TOY_NAMES = ("toy_embedding_dataset", "embedding_dataset")
SHIPPED_PATH_KEYS = ("dataset_path", "corpus_path")


def is_shipped(path: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(ASSETS)


def shipped_paths(data: dict[str, Any], config_path: str | Path) -> dict[str, Any]:
    """A shipped config's data paths (`assets/samples/…`) made absolute inside the package, so the default config
    names the same sample from any working directory. Other files' relative paths stay relative to where one runs."""
    if not is_shipped(config_path):
        return data
    out = dict(data)
    for key in SHIPPED_PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value.startswith("assets/"):
            out[key] = str(ASSETS / value.removeprefix("assets/"))
    return out


HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # owner/name


def names_data(name: str) -> bool:
    """Whether a `dataset_name` names data rather than only labelling it: an existing file or folder, the guide's toy
    name, or a hub dataset id (owner/name)."""
    return bool(name) and (name in TOY_NAMES or bool(HUB_ID.fullmatch(name)) or Path(name).exists())
