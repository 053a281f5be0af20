"""The ground floor: what every other part of genrecraft stands on, importing nothing of ours above it.

- :mod:`genrecraft.core.compat`: audiocraft 1.3.0 on a modern torch (shims, the config tree, ``doctor`` checks);
- :mod:`genrecraft.core.paths`: the work and cache folders;
- :mod:`genrecraft.core.atomic`: atomic writes (temp file + rename);
- :mod:`genrecraft.core.audio`: audio I/O, audio lists, and the one reader and writer of audiocraft manifests;
- :mod:`genrecraft.core.download`: the one downloader of model files (atomic, checksummed, offline-aware);
- :mod:`genrecraft.core.serve`: a folder served over loopback HTTP (the demo's playlists, tests, benchmarks);
- :mod:`genrecraft.core.runs`: a Dora run's ``history.json``;
- :mod:`genrecraft.core.hf_names`: audiocraft's and transformers' names for MusicGen's parameters;
- :mod:`genrecraft.core.errors`: the error base classes the command line maps to exit codes;
- :mod:`genrecraft.core.cli`: the flags every command shares, help formatting, :func:`~genrecraft.core.cli.run`.
"""
