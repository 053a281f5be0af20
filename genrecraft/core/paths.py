"""Where genrecraft keeps its outputs and caches.

Nothing is ever written next to a user's input files. Two roots, both overridable by environment variables:

- the work dir (``GENRECRAFT_WORK_DIR``, default ``$XDG_DATA_HOME/genrecraft``, i.e. ``~/.local/share/genrecraft``):
  Dora experiments (``dora/``) and user-level Hydra configs (``configs/``, e.g. the ``dset/audio/<name>.yaml``
  files that the dataset builder registers), i.e. things a user wants to keep;
- the cache dir (``GENRECRAFT_CACHE_DIR``, default ``$XDG_CACHE_HOME/genrecraft``, i.e. ``~/.cache/genrecraft``):
  downloaded or converted model files and embedding caches, i.e. things that can be rebuilt.
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def work_dir() -> Path:
    """Root for experiments and user configs (``GENRECRAFT_WORK_DIR``)."""
    value = os.environ.get("GENRECRAFT_WORK_DIR")
    path = Path(value) if value else _xdg("XDG_DATA_HOME", ".local/share") / "genrecraft"
    return path.expanduser().resolve()


def cache_dir() -> Path:
    """Root for rebuildable caches: model files, embeddings (``GENRECRAFT_CACHE_DIR``)."""
    value = os.environ.get("GENRECRAFT_CACHE_DIR")
    path = Path(value) if value else _xdg("XDG_CACHE_HOME", ".cache") / "genrecraft"
    return path.expanduser().resolve()


def dora_dir() -> Path:
    """Folder of Dora experiments: ``AUDIOCRAFT_DORA_DIR`` if set, else ``<work dir>/dora``."""
    value = os.environ.get("AUDIOCRAFT_DORA_DIR")
    return Path(value).expanduser().resolve() if value else work_dir() / "dora"


def user_config_dir() -> Path:
    """Extra Hydra config root searched after audiocraft's and genrecraft's: ``<work dir>/configs``."""
    return work_dir() / "configs"


PRETRAINED = "//pretrained/"  # audiocraft's prefix for a model or codec named by hub id or folder


def pretrained_name(text: str) -> tp.Optional[str]:
    """``//pretrained/<name>`` -> ``<name>`` (a hub id or a folder); ``None`` for any other text."""
    return text[len(PRETRAINED):] if text.startswith(PRETRAINED) else None
