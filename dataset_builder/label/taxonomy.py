"""Which tagger outputs are genres, moods or instruments, and how they are named in genrecraft's labels.

Names are lower case (audiocraft's loader lower-cases keywords anyway); multi-word moods are hyphenated
because audiocraft splits a moods string on spaces and commas.
"""

from __future__ import annotations

import typing as tp

# musicnn MSD tags
MSD_GENRES = {
    "rock": "rock", "pop": "pop", "alternative": "alternative", "indie": "indie", "electronic": "electronic",
    "dance": "dance", "alternative rock": "alternative rock", "jazz": "jazz", "metal": "metal",
    "chillout": "chillout", "classic rock": "classic rock", "soul": "soul", "indie rock": "indie rock",
    "electronica": "electronica", "folk": "folk", "punk": "punk", "blues": "blues", "hard rock": "hard rock",
    "ambient": "ambient", "experimental": "experimental", "Hip-Hop": "hip-hop", "country": "country",
    "easy listening": "easy listening", "funk": "funk", "electro": "electro", "heavy metal": "heavy metal",
    "Progressive rock": "progressive rock", "rnb": "r&b", "indie pop": "indie pop", "House": "house",
    "acoustic": "acoustic",
}
MSD_MOODS = {"beautiful": "beautiful", "Mellow": "mellow", "chill": "chill", "party": "party", "sexy": "sexy",
             "catchy": "catchy", "sad": "sad", "happy": "happy"}
MSD_KEYWORDS = {"00s": "2000s", "80s": "80s", "90s": "90s", "70s": "70s", "60s": "60s", "oldies": "oldies",
                "female vocalists": "female vocals", "female vocalist": "female vocals",
                "male vocalists": "male vocals", "instrumental": "instrumental"}

# musicnn MTT tags
MTT_GENRES = {"classical": "classical", "techno": "techno", "electronic": "electronic", "rock": "rock",
              "indian": "indian", "opera": "opera", "pop": "pop", "new age": "new age", "dance": "dance",
              "country": "country", "metal": "metal", "ambient": "ambient"}
MTT_MOODS = {"slow": "slow", "fast": "fast", "loud": "loud", "quiet": "quiet", "soft": "soft", "weird": "weird"}
MTT_INSTRUMENTS = {"guitar": "guitar", "strings": "strings", "drums": "drums", "piano": "piano",
                   "violin": "violin", "vocal": "vocals", "vocals": "vocals", "voice": "vocals", "singing": "vocals",
                   "synth": "synthesizer", "harpsichord": "harpsichord", "flute": "flute", "sitar": "sitar",
                   "choir": "choir", "choral": "choir", "harp": "harp", "cello": "cello", "beat": "drums",
                   "beats": "drums"}


def pick(scores: tp.Mapping[str, float], names: tp.Mapping[str, str], threshold: float, top: int,
         at_least_one: bool = False) -> tp.List[tp.Tuple[str, float]]:
    """Map tagger scores to label names (max over synonyms), keep those >= ``threshold``, best ``top`` first.

    With ``at_least_one`` the best label is kept even below the threshold (every chunk gets a genre).
    """
    merged: tp.Dict[str, float] = {}
    for tag, label in names.items():
        if tag in scores:
            merged[label] = max(merged.get(label, 0.0), float(scores[tag]))
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [(k, v) for k, v in ranked if v >= threshold][:top]
    if not kept and at_least_one and ranked:
        kept = ranked[:1]
    return kept


def hyphenate(label: str) -> str:
    return "-".join(label.split())
