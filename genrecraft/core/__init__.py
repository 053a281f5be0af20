"""The ground floor: what every other part of genrecraft stands on, importing nothing of ours above it.

- :mod:`genrecraft.core.compat`: audiocraft 1.3.0 on a modern torch (shims, the config tree, ``doctor`` checks);
- :mod:`genrecraft.core.paths`: the work and cache folders;
- :mod:`genrecraft.core.atomic`: atomic writes (temp file + rename);
- :mod:`genrecraft.core.audio`: audio I/O, audio lists and audiocraft manifests;
- :mod:`genrecraft.core.errors`: the error base classes the command line maps to exit codes.
"""
