"""Bad input to every CLI ends in one clear line and an exit code, never a traceback: damaged or mismatched LoRA
adapters, empty or malformed manifests for ``eval ce``, FAD/KAD with too few clips, malformed requests to the
rating server (wrong types, oversized bodies, a Content-Length larger than the body)."""

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lora
from lora.io import CONFIG_NAME, WEIGHTS_NAME
from genrecraft.models import tiny_musicgen


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)


def _one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# LoRA adapters

@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapter") / "ad"
    model = tiny_musicgen(seed=0)
    lora.inject(model, lora.LoraConfig(r=4))
    lora.save_adapter(model, folder, base_model_id="tiny:0")
    return folder


def _copy(adapter: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(adapter, tmp_path / "ad"))


def test_corrupt_safetensors_is_named(adapter, tmp_path):
    folder = _copy(adapter, tmp_path)
    weights = folder / WEIGHTS_NAME
    for damage in (weights.read_bytes()[:100], b"\x00" * 64, b""):
        weights.write_bytes(damage)
        with pytest.raises(ValueError, match=r"adapter_model\.safetensors cannot be read as safetensors.*damaged"):
            lora.load_adapter(tiny_musicgen(seed=0), folder)


def test_config_with_another_rank_is_named(adapter, tmp_path):
    folder = _copy(adapter, tmp_path)
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["lora"]["r"] = 8
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(lora.AdapterMismatchError, match=r"has shape \(4, .*config \(r=8\).*different adapters"):
        lora.load_adapter(tiny_musicgen(seed=0), folder)


@pytest.mark.parametrize("key", ["lm_shape", "lora", "base_fingerprint", "base_model_id"])
def test_config_missing_a_key_is_named(adapter, tmp_path, key):
    folder = _copy(adapter, tmp_path)
    config = json.loads((folder / CONFIG_NAME).read_text())
    del config[key]
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"adapter_config.json is missing '{key}'"):
        lora.read_adapter_config(folder)


def test_bad_config_values_and_json_are_named(adapter, tmp_path):
    folder = _copy(adapter, tmp_path)
    path = folder / CONFIG_NAME
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "lora": {**config["lora"], "r": 0}}))
    with pytest.raises(ValueError, match="bad 'lora' entry: LoraConfig.r=0"):
        lora.read_adapter_config(folder)
    path.write_text(json.dumps({**config, "lora": {**config["lora"], "rank": 4}}))
    with pytest.raises(ValueError, match="unknown LoRA config keys"):
        lora.read_adapter_config(folder)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="adapter_config.json is not valid JSON"):
        lora.read_adapter_config(folder)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a JSON list"):
        lora.read_adapter_config(folder)


@pytest.mark.slow
def test_lora_cli_bad_adapter_is_one_line(adapter, tmp_path):
    folder = _copy(adapter, tmp_path)
    (folder / CONFIG_NAME).write_text("{")
    line = _one_line(_run("lora", "info", str(folder)))
    assert "adapter_config.json is not valid JSON" in line
    (folder / CONFIG_NAME).write_text((adapter / CONFIG_NAME).read_text())
    (folder / WEIGHTS_NAME).write_bytes(b"garbage")
    line = _one_line(_run("lora", "merge", "--base", "tiny:0", "--adapter", str(folder), "--out",
                          str(tmp_path / "merged")))
    assert "cannot be read as safetensors" in line and not (tmp_path / "merged").exists()


@pytest.mark.slow
def test_lora_merge_on_another_base_names_its_flag_and_the_flag_merges(adapter, tmp_path):
    line = _one_line(_run("lora", "merge", "--base", "tiny:1", "--adapter", str(adapter), "--out",
                          str(tmp_path / "merged")))
    assert "fingerprint differs" in line and "--skip-base-check" in line and not (tmp_path / "merged").exists()
    proc = _run("lora", "merge", "--model", "tiny:1", "--adapter", str(adapter), "--out", str(tmp_path / "merged"),
                "--skip-base-check")  # --model, as in every command (--base above: the earlier name still works)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "merged" / "state_dict.bin").is_file()


# eval ce manifests

def _manifest(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "egs" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.jsonl").write_text(text)
    return folder


def test_bad_manifests_name_file_and_line(tmp_path):
    from eval.ce import check_manifest

    wav = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(32000, np.float32), 32000)
    good = json.dumps({"path": str(wav), "duration": 1.0, "sample_rate": 32000})
    cases = {
        "": "is empty",
        "\n\n": "is empty",
        f"{good}\n{{oops\n": "data.jsonl:2: not valid JSON",
        f"{good}\n[1, 2]\n": "data.jsonl:2: each line must be a JSON object",
        json.dumps({"duration": 1.0, "sample_rate": 32000}) + "\n": "data.jsonl:1: entry has no 'path'",
        json.dumps({"path": str(wav), "sample_rate": 32000}) + "\n": "data.jsonl:1: entry has no 'duration'",
        json.dumps({"path": str(wav), "duration": "1", "sample_rate": 32000}) + "\n": "'duration' is '1'",
        json.dumps({"path": 3, "duration": 1.0, "sample_rate": 32000}) + "\n": "'path' is 3, not a str",
        f"{good}\n\n" + json.dumps({"path": str(tmp_path / "gone.wav"), "duration": 1.0, "sample_rate": 32000})
        + "\n": "data.jsonl:3: audio .*gone.wav does not exist",
    }
    for text, message in cases.items():
        folder = _manifest(tmp_path, text)
        with pytest.raises(ValueError, match=message):
            check_manifest(folder)
    assert check_manifest(_manifest(tmp_path, good + "\n")) == 1


@pytest.mark.slow
def test_eval_ce_cli_bad_manifest_is_one_line(tmp_path):
    folder = _manifest(tmp_path, "{oops\n")
    line = _one_line(_run("eval", "ce", "tiny:0", "--manifest", str(folder), "--device", "cpu"))
    assert "data.jsonl:1: not valid JSON" in line
    folder = _manifest(tmp_path, "")
    assert "is empty" in _one_line(_run("eval", "ce", "tiny:0", "--manifest", str(folder), "--device", "cpu"))


# FAD / KAD with too few clips

def test_fad_with_one_clip_warns_and_too_few_frames_refuse(caplog):
    from eval.fad import MIN_CLIPS_FOR_INTERVAL, MIN_FRAMES, fad_from_embeddings

    rng = np.random.default_rng(0)
    reference = [rng.normal(size=(50, 8)) for _ in range(4)]
    with caplog.at_level(logging.WARNING, logger="eval.fad"):
        result = fad_from_embeddings([rng.normal(size=(50, 8))], reference, bootstrap=20, kad=True)
    assert np.isfinite(result.fad) and np.isnan(result.fad_interval[0])
    assert f"at least {MIN_CLIPS_FOR_INTERVAL} clips" in caplog.text and "reported as nan" in caplog.text
    with pytest.raises(ValueError, match=f"evaluated set has 1 embedding frame.*at least {MIN_FRAMES}"):
        fad_from_embeddings([rng.normal(size=(1, 8))], reference, bootstrap=0)
    with pytest.raises(ValueError, match=f"reference set has 1 embedding frame.*at least {MIN_FRAMES}"):
        fad_from_embeddings([rng.normal(size=(50, 8))], [rng.normal(size=(1, 8))], bootstrap=0)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="eval.fad"):
        fad_from_embeddings([rng.normal(size=(3, 8))] * 2, reference, bootstrap=0, kad=False)
    assert "rank-deficient" in caplog.text


# the rating server

@pytest.fixture(scope="module")
def listening_test(tmp_path_factory):
    import torch

    from scripts.listening import pairs

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("listening") / "test"
        models = {"base": tiny_musicgen(seed=0), "full": tiny_musicgen(seed=1)}
        pairs.make_pairs(models, ["bright synth-pop", "mellow lofi"], out, pairs.PairsConfig(
            generation=pairs.GenerationSettings(duration=1.0, top_k=50), style="synth-pop", blind_seed=1))
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture
def server(listening_test, tmp_path):
    from scripts.listening import server as server_mod

    server = server_mod.make_server(listening_test, db_path=tmp_path / "ratings.sqlite", port=0)
    server.RequestHandlerClass.timeout = 1.0  # a short socket timeout for the test
    server_mod.serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


def _raw(server, data: bytes, wait: float = 5.0) -> str:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _post(server, path: str, body: bytes, headers: str = "") -> str:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n") if "Content-Length" not in headers else \
        f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"
    return _raw(server, head.encode() + body)


@pytest.mark.slow
def test_rating_server_checks_types_and_never_stores_a_wrong_one(server, caplog):
    import time

    store = server.app.store
    pair = store.pair_ids[0]
    assert " 200 " in _post(server, "/api/session", json.dumps({"rater": "ann"}).encode()).splitlines()[0]
    bad = [{"ended": "false", "played_s": 3.0}, {"ended": True, "played_s": "3"}, {"ended": 1, "played_s": 3.0},
           {"played_s": 3.0}, [3.0, True], "played", {"ended": False, "played_s": True}]
    for value in bad:
        reply = _post(server, "/api/answer", json.dumps({"rater": "ann", "pair_id": pair, "kind": "listen",
                                                         "side": "A", "value": value}).encode())
        assert " 400 " in reply.splitlines()[0] and '"error"' in reply, (value, reply)
    for body in ({"rater": "ann", "pair_id": [pair], "kind": "preference", "value": "A"},
                 {"rater": "ann", "pair_id": {"a": 1}, "kind": "preference", "value": "A"},
                 {"rater": ["ann"], "pair_id": pair, "kind": "preference", "value": "A"},
                 {"rater": "ann", "pair_id": pair, "kind": ["rating"], "value": 3},
                 {"rater": "ann", "pair_id": pair, "kind": "rating", "side": "A", "question": ["q"], "value": 3},
                 {"rater": "ann", "pair_id": pair, "kind": "rating", "side": "A", "question": "quality",
                  "value": "5"}):
        reply = _post(server, "/api/answer", json.dumps(body).encode())
        assert " 400 " in reply.splitlines()[0], (body, reply)
    assert store.session("ann")["answers"][pair]["listened"] == {}  # nothing wrong was stored
    ok = _post(server, "/api/answer", json.dumps({"rater": "ann", "pair_id": pair, "kind": "listen", "side": "A",
                                                  "value": {"played_s": 2.5, "ended": False}}).encode())
    assert " 200 " in ok.splitlines()[0]
    assert store.session("ann")["answers"][pair]["listened"]["A"] == {"played_s": 2.5, "ended": False}

    for headers, body, status in (("Content-Length: abc\r\n", b"{}", " 400 "),
                                  ("Content-Length: -5\r\n", b"{}", " 400 "),
                                  ("Content-Length: 99999999\r\n", b"{}", " 413 "),
                                  ("", b"\xff\xfe not utf-8", " 400 "),
                                  ("", b"[1, 2]", " 400 "),
                                  ("", b"null", " 400 ")):
        reply = _post(server, "/api/answer", body, headers)
        assert status in reply.splitlines()[0], (headers, body, reply)
    # a Content-Length larger than the body: the connection times out instead of holding a thread forever
    t0 = time.time()
    reply = _post(server, "/api/answer", b'{"rater": "ann"}', "Content-Length: 500\r\n")
    assert time.time() - t0 < 10 and (" 408 " in reply or reply == "")
    # and the server still answers
    assert " 200 " in _raw(server, b"GET /api/test HTTP/1.0\r\n\r\n").splitlines()[0]
