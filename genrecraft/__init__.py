"""genrecraft: fine-tune MusicGen to a style of music.

Shared pieces live here: :mod:`genrecraft.core.compat` (audiocraft 1.3.0 on modern torch),
:mod:`genrecraft.core.paths` (work and cache folders) and :mod:`genrecraft.train` (the Dora entry point,
used as ``dora -P genrecraft run ...`` or with ``DORA_PACKAGE=genrecraft``).
"""

__version__ = "0.1.0"
