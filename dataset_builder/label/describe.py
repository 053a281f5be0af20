"""Text descriptions built from labels, varied so the model does not learn one template.

>>> describe(labels, seed=3)   # doctest: +SKIP
'energetic synth-pop with synthesizer and drums, F# major, 128 bpm'
"""

from __future__ import annotations

import random
import re
import typing as tp

if tp.TYPE_CHECKING:
    from . import Labels

_TEMPLATES = (
    "{mood} {genre}{with_instruments}{key_part}{bpm_part}",
    "{genre} track{with_instruments}, {mood}{key_part}{bpm_part}",
    "a {mood} {genre} piece{bpm_paren}{with_instruments}{key_part}",
    "{genre}{key_part}{bpm_part}{with_instruments}",
    "{tempo_word} {genre} song{with_instruments}{key_part}{bpm_part}",
)


FIELDS = ("mood", "genre", "with_instruments", "key_part", "bpm_part", "bpm_paren", "tempo_word")


def tidy(text: str) -> str:
    """Remove what empty fields leave behind: empty brackets, doubled commas, spaces before punctuation, a
    leading or trailing comma; an opening "a" before a vowel becomes "an"."""
    text = re.sub(r"\(\s*\)", " ", text)
    text = re.sub(r"\s+([,)])", r"\1", text)
    text = re.sub(r",(\s*,)+", ",", text)
    text = re.sub(r"\(\s+", "(", text)
    text = " ".join(text.split()).strip(" ,")
    return re.sub(r"^a (?=[aeiou])", "an ", text)  # only the article that opens a template (keys are "A", "E")


def render(template: str, **fields: str) -> str:
    """One template with its fields (any of them may be empty), tidied."""
    return tidy(template.format(**{name: fields.get(name, "") for name in FIELDS}))


def _without_genre(template: str) -> str:
    """``template`` for a chunk without a genre: a noun after the genre stands alone ("a track", "a song")."""
    for noun in ("track", "piece", "song"):
        if "{genre} " + noun in template:
            return re.sub(r"^(a )?(.*?)\{genre\} " + noun, lambda m: "a " + m.group(2) + noun, template)
    return template


def _tempo_word(bpm: float) -> str:
    if bpm < 80:
        return "slow"
    if bpm < 110:
        return "mid-tempo"
    if bpm < 140:
        return "upbeat"
    return "fast"


def _join(items: tp.Sequence[str], rng: random.Random) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + rng.choice([" and ", " & ", ", "]) + items[-1]


def describe(labels: "Labels", seed: int = 0) -> str:
    """A one-line description of a chunk from its labels; deterministic for a given ``seed``.

    Varies the template, the order of instruments, the words for tempo and BPM, and drops optional parts
    (mood, instruments, key, tempo) now and then.
    """
    rng = random.Random(seed)
    genre = labels.genres[0][0] if labels.genres else "music"  # "music", not a made-up genre, when none is sure
    if len(labels.genres) > 1 and rng.random() < 0.3:
        genre = f"{genre} / {labels.genres[1][0]}"
    moods = [m for m, _ in labels.moods]
    mood = rng.choice(moods[:2]).replace("-", " ") if moods and rng.random() > 0.15 else ""
    instruments = [i for i, _ in labels.instruments]
    rng.shuffle(instruments)
    with_instruments = ""
    if instruments and rng.random() > 0.2:
        with_instruments = rng.choice([" with ", " featuring ", " built on "]) + _join(instruments[:3], rng)
    key_part = ""
    if labels.key and rng.random() > 0.2:
        key_part = rng.choice([", {k} {s}", ", in {k} {s}", ", key of {k} {s}"]).format(k=labels.key, s=labels.scale)
    bpm = int(round(labels.bpm)) if labels.bpm and labels.bpm > 0 else 0
    bpm_word = rng.choice(["bpm", "BPM", "beats per minute"])
    bpm_part = f", {bpm} {bpm_word}" if bpm and rng.random() > 0.15 else ""
    bpm_paren = f" ({bpm} {bpm_word})" if bpm and rng.random() > 0.3 else ""
    template = rng.choice(_TEMPLATES)
    if not labels.genres:  # "a mid-tempo song", not "mid-tempo music song"
        template = _without_genre(template)
    return render(template, mood=mood, genre=genre, with_instruments=with_instruments,
                  key_part=key_part, bpm_part=bpm_part, bpm_paren=bpm_paren,
                  tempo_word=_tempo_word(bpm) if bpm else "")
