"""Build an audiocraft training set from a playlist: download, chunk, label, split by song, write manifests.

    python -m dataset_builder playlist.txt --out data/jpop

From Python, each stage is a function returning its results (see :mod:`dataset_builder.pipeline`)::

    from dataset_builder import BuildConfig, build
    result = build("playlist.txt", "data/jpop", BuildConfig(tagger="musicnn", workers=2))
    result.dset          # "audio/jpop": pass dset=audio/jpop to Dora
"""

from .config import BuildConfig
from .pipeline import BuildResult, build, finalize, merge

__all__ = ["BuildConfig", "BuildResult", "build", "finalize", "merge"]
