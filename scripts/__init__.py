"""Listening tests for genrecraft: paired clips from several models, a blind rating page, and their analysis.

Command lines (each has ``--help``):

- ``python -m scripts.make_pairs``: generate the clips and the blind A/B pairs (:mod:`scripts.listening.pairs`);
- ``python -m scripts.rate``: serve the rating page on this machine (:mod:`scripts.listening.server`);
- ``python -m scripts.analyze``: win rates, MOS and rater agreement, a plot and CSV files
  (:mod:`scripts.listening.analysis`).
"""
