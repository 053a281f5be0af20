"""Taggers: 16 kHz audio -> genre, mood, instrument (and keyword) tags with their probabilities.

A tagger is one class and one registration::

    @register
    class MyTagger(Tagger):
        name = "mine"                       # --tagger mine
        def tags(self, audio16k, threshold, top):
            return {"genres": [("jazz", 0.8)], "moods": [], "instruments": [], "keywords": []}

:class:`dataset_builder.label.Labeler` builds the tagger named by ``LabelConfig.tagger`` once per worker;
``--tagger none`` labels with the DSP (key, tempo, loudness) only.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from . import taxonomy as tx
from .effnet import EffnetTagger, effnet_label_name
from .musicnn import MusicnnModel
from .vocal_detector import VocalDetector

VOCAL_DETECTOR = "vocal_detector"  # its probability of a voice, kept with the raw scores (``scores[...]["vocal"]``)

Scored = tp.List[tp.Tuple[str, float]]
NONE = "none"


class Tagger:
    """Base class of the taggers; subclasses set :attr:`name` and implement :meth:`tags`."""

    name: str = ""
    help: str = ""

    def tags(self, audio16k: np.ndarray, threshold: float, top: int) -> tp.Dict[str, tp.Any]:
        """``{"genres": Scored, "moods": Scored, "instruments": Scored, "keywords": [str]}`` for mono 16 kHz
        ``audio16k`` [samples]: tags of probability >= ``threshold``, at most ``top`` of each (at least one genre);
        optionally ``"scores"``: every raw probability by model name (the vocal score is made from these)."""
        raise NotImplementedError


REGISTRY: tp.Dict[str, tp.Type[Tagger]] = {}


def register(cls: tp.Type[Tagger]) -> tp.Type[Tagger]:
    """Class decorator: make ``cls`` available as ``--tagger cls.name``."""
    if not cls.name or cls.name == NONE:
        raise ValueError(f"tagger {cls.__name__} needs a name other than {NONE!r}")
    REGISTRY[cls.name] = cls
    return cls


def names() -> tp.Tuple[str, ...]:
    """The values ``--tagger`` takes: every registered tagger, then ``none``."""
    return (*REGISTRY, NONE)


def create(name: str) -> tp.Optional[Tagger]:
    """The tagger registered as ``name`` (``None`` for ``none``); ``ValueError`` naming the choices otherwise."""
    if name == NONE:
        return None
    if name not in REGISTRY:
        raise ValueError(f"tagger {name!r}: use one of {', '.join(names())}")
    return REGISTRY[name]()


@register
class MusicnnTagger(Tagger):
    """The MSD and MTT musicnn models (shipped in the musicnn PyPI wheel; offline after one download)."""

    name = "musicnn"

    def __init__(self) -> None:
        self.models = [MusicnnModel("MSD_musicnn"), MusicnnModel("MTT_musicnn")]  # pick's order
        self.vocal_detector = VocalDetector()

    def tags(self, audio16k: np.ndarray, threshold: float, top: int) -> tp.Dict[str, tp.Any]:
        patches = self.models[0].patches(audio16k)  # both models take the same mel patches: computed once
        outputs = {model.name: model.predict(patches) for model in self.models}  # one run: tags and embeddings
        msd, mtt = (model.mean_tags(outputs[model.name]) for model in self.models)
        picked = self.pick(msd, mtt, threshold, top)
        picked["scores"][VOCAL_DETECTOR] = {"vocal": self.vocal_detector(outputs)}
        return picked

    @staticmethod
    def pick(msd: tp.Mapping[str, float], mtt: tp.Mapping[str, float], threshold: float, top: int
             ) -> tp.Dict[str, tp.Any]:
        """The tags of a clip from the MSD and MTT models' mean probabilities (label -> probability)."""
        return {
            "genres": tx.pick({**mtt, **msd}, {**tx.MTT_GENRES, **tx.MSD_GENRES}, threshold, top, at_least_one=True),
            "moods": [(tx.hyphenate(n), p) for n, p in
                      tx.pick({**msd, **mtt}, {**tx.MSD_MOODS, **tx.MTT_MOODS}, threshold, top)],
            "instruments": tx.pick(mtt, tx.MTT_INSTRUMENTS, threshold, top),
            "keywords": [n for n, _ in tx.pick(msd, tx.MSD_KEYWORDS, threshold, top)],
            "scores": {"MSD_musicnn": dict(msd), "MTT_musicnn": dict(mtt)},
        }


@register
class DiscogsEffnetTagger(Tagger):
    """Discogs-EffNet with the genre_discogs400, MTG-Jamendo mood/theme and instrument heads (downloaded from
    essentia.upf.edu once, checked against their published sizes)."""

    name = "effnet"

    def __init__(self) -> None:
        self.model = EffnetTagger()

    def tags(self, audio16k: np.ndarray, threshold: float, top: int) -> tp.Dict[str, tp.Any]:
        scores = self.model(audio16k)
        out: tp.Dict[str, tp.Any] = {"keywords": []}
        for field, head, at_least_one in (("genres", "genre", True), ("moods", "mood", False),
                                          ("instruments", "instrument", False)):
            label_names = {label: effnet_label_name(label) for label in scores[head]}
            picked = tx.pick(scores[head], label_names, threshold, top, at_least_one=at_least_one)
            out[field] = [(tx.hyphenate(n), p) for n, p in picked] if field == "moods" else picked
        return out
