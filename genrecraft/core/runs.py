"""A Dora run's folder as genrecraft reads it: the one reader of ``history.json``."""

from __future__ import annotations

import json
import typing as tp
from pathlib import Path

History = tp.List[tp.Dict[str, tp.Dict[str, float]]]


def read_history(folder: tp.Union[str, Path]) -> History:
    """Per-epoch metrics of the run in ``folder``: ``[{"train": {"ce": ..}, "valid": {"ce": ..}, ...}, ...]``
    (Dora's ``history.json``); empty when the run has not finished an epoch."""
    path = Path(folder) / "history.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): the run's history is damaged") from exc


def valid_ce(history: History) -> tp.List[float]:
    """Valid cross-entropy per epoch (epochs without a valid stage are left out)."""
    return [float(e["valid"]["ce"]) for e in history if "ce" in e.get("valid", {})]
