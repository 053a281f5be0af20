"""Hydra search-path plugin: adds genrecraft's configs and the user's config folder.

Hydra discovers every module under the ``hydra_plugins`` namespace package. This one appends, after the
primary config dir (audiocraft's tree, see :mod:`genrecraft.train`):

1. ``pkg://audiocraft_configs``: the configs shipped in this repository;
2. ``<work dir>/configs``: per-user configs such as the ``dset/audio/<name>.yaml`` files that
   ``python -m dataset_builder`` registers, so ``dset=audio/<name>`` works right after a build.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from genrecraft.core import paths


class GenrecraftSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="genrecraft", path="pkg://audiocraft_configs")
        search_path.append(provider="genrecraft-user", path=f"file://{paths.user_config_dir()}")
