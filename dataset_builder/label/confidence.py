"""What a description may say: only labels sure enough, and the playlist's tags over the labeller's.

Every label keeps its probability in the sidecar (``labels``); the description (and the MusicInfo fields beside it)
is written from :func:`confident`, which leaves out

- tags (genres, moods, instruments) below ``min_tag_confidence`` (``--min-tag-confidence``);
- the key when essentia's key strength is below :data:`MIN_KEY_STRENGTH`;
- the tempo when the tracked beats are irregular (:func:`.dsp.beat_regularity` below :data:`MIN_TEMPO_CONFIDENCE`),

so a description says less rather than something wrong. These run on stored labels: changing them redescribes
without running the tagger again.
"""

from __future__ import annotations

import dataclasses
import typing as tp

if tp.TYPE_CHECKING:
    from . import Labels

# Chosen on bench/bench_vocals.py's dev songs (bench_labels.py's dev General MIDI songs, 36), reported on its
# held-out ones (60); see bench/RESULTS.md. Tempo (30 s clips): the two wrong tempi there had beat regularities 0.88
# and 0.93, right ones mostly 1.0; any threshold in (0.93, 0.986] leaves no false tempo in a dev description and 8 %
# of the right tempi out; 0.95 is inside (so it was before the tracker's first and last beats were left out: 0.88
# and 0.91, (0.911, 0.973]). Key: every key of those songs was right (strengths >= 0.76), so no threshold can
# be chosen on them and none is applied; where keys do go wrong (15 s clips, bench/bench_confidence.py), they are
# as strong as right ones.
MIN_KEY_STRENGTH = 0.0
MIN_TEMPO_CONFIDENCE = 0.95
DEFAULT_MIN_TAG_CONFIDENCE = 0.25
VOCAL_TAGS = frozenset({"vocals", "choir", "female vocals", "male vocals"})  # label names (taxonomy) of voices


def confident(labels: "Labels", min_tag_confidence: float = DEFAULT_MIN_TAG_CONFIDENCE,
              min_key_strength: float = MIN_KEY_STRENGTH, min_tempo_confidence: float = MIN_TEMPO_CONFIDENCE,
              instrumental: bool = False) -> "Labels":
    """``labels`` with only what a description may state (see the module's doc). ``instrumental``: the chunk is an
    accompaniment stem, so voice tags are left out and ``instrumental`` is a keyword."""

    def keep(tags: tp.Sequence[tp.Tuple[str, float]]) -> tp.List[tp.Tuple[str, float]]:
        return [(n, p) for n, p in tags if p >= min_tag_confidence and not (instrumental and n in VOCAL_TAGS)]

    changes: tp.Dict[str, tp.Any] = {f: keep(getattr(labels, f)) for f in ("genres", "moods", "instruments")}
    probability = keyword_probabilities(labels)
    keywords = [k for k in labels.keywords if not (instrumental and k in VOCAL_TAGS)
                and probability.get(k, 1.0) >= min_tag_confidence]
    changes["keywords"] = keywords + (["instrumental"] if instrumental and "instrumental" not in keywords else [])
    if labels.key_strength < min_key_strength:
        changes.update(key="", scale="")
    if labels.tempo_confidence is not None and labels.tempo_confidence < min_tempo_confidence:
        changes["bpm"] = 0.0
    return dataclasses.replace(labels, **changes)


def keyword_probabilities(labels: "Labels") -> tp.Dict[str, float]:
    """Each musicnn keyword's probability (the MSD tags it comes from, at most), from the stored raw scores; labels
    without them (other taggers, older labels) give none, and their keywords are kept."""
    from .taxonomy import MSD_KEYWORDS

    msd = (labels.scores or {}).get("MSD_musicnn") or {}
    found: tp.Dict[str, float] = {}
    for tag, keyword in MSD_KEYWORDS.items():
        if tag in msd:
            found[keyword] = max(found.get(keyword, 0.0), float(msd[tag]))
    return found
