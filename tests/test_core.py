"""The ground floor's shared pieces: the model-file downloader, the manifest writer and reader."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from genrecraft.core import audio, download
from genrecraft.core.errors import ModelFilesError, UserError


def test_fetch_verifies_before_the_file_appears(tmp_path, monkeypatch):
    monkeypatch.delenv("GENRECRAFT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    source = tmp_path / "weights.bin"
    source.write_bytes(b"model weights" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    url = source.as_uri()
    with pytest.raises(ModelFilesError, match="expected 0+"):
        download.fetch(url, tmp_path / "a" / "w.bin", "the test model", sha256="0" * 64)
    assert not (tmp_path / "a" / "w.bin").exists() and not list((tmp_path / "a").iterdir())  # no partial file
    with pytest.raises(ModelFilesError, match="not a model"):
        download.fetch(url, tmp_path / "a" / "w.bin", "the test model",
                       check=lambda p: (_ for _ in ()).throw(ModelFilesError(f"{p.name} is not a model")))
    got = download.fetch(url, tmp_path / "a" / "w.bin", "the test model", sha256=good)
    assert got.read_bytes() == source.read_bytes() and download.sha256_of(got) == good
    with pytest.raises(ModelFilesError, match="could not download the test model"):
        download.fetch((tmp_path / "gone.bin").as_uri(), tmp_path / "b.bin", "the test model")
    monkeypatch.setenv("GENRECRAFT_OFFLINE", "1")
    with pytest.raises(ModelFilesError, match="offline mode") as info:
        download.fetch(url, tmp_path / "c.bin", "the test model")
    assert isinstance(info.value, UserError) and url in str(info.value)
    assert download.fetch(url, got, "the test model") == got  # present: nothing to fetch, even offline


def test_manifest_written_is_the_manifest_read(tmp_path):
    import soundfile as sf

    clip = tmp_path / "clips" / "a.wav"
    audio.write_wav(clip, np.zeros((1, 3200), dtype=np.float32), 32000)
    assert sf.info(str(clip)).frames == 3200 and sf.info(str(clip)).subtype == "FLOAT"
    (clip.with_suffix(".json")).write_text('{"description": "quiet"}')
    audio.write_manifest(tmp_path / "egs" / "data.jsonl", [audio.audio_meta(clip, 0.1, 32000)])
    [entry] = audio.read_manifest(tmp_path / "egs")
    assert entry["path"] == str(clip.resolve()) and entry["duration"] == 0.1 and entry["info"]["description"] == "quiet"
    yaml = audio.dset_yaml({s: tmp_path / "egs" for s in ("train", "valid", "evaluate", "generate")}, 32000, "x")
    assert yaml.startswith("# @package __global__\n# x\ndatasource:\n") and f"train: {tmp_path / 'egs'}" in yaml


def test_an_unreachable_hub_turns_offline_mode_on_instead_of_retrying(monkeypatch):
    from genrecraft import cli as app
    from genrecraft.core import download

    for name in download.OFFLINE_VARIABLES:  # set (to off) through monkeypatch, so that the "1" set below is undone
        monkeypatch.setenv(name, "")
    assert download.offline_unless_reachable("hub.invalid", timeout=1.0)  # .invalid never resolves
    assert os.environ["HF_HUB_OFFLINE"] == "1" and download.offline()
    assert not download.offline_unless_reachable("hub.invalid")  # already offline: no second probe
    assert app.argv_needs_hub(["eval", "backends"]) and app.argv_needs_hub(["generate", "x", "--model", "m"])
    assert not app.argv_needs_hub(["build", "p.txt"]) and not app.argv_needs_hub(["eval", "--help"])
