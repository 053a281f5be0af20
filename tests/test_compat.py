"""The audiocraft shims in genrecraft.core.compat: each one fixes the behaviour it names."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from genrecraft.core import compat


def test_apply_is_idempotent_and_sets_user(monkeypatch):
    compat.apply()
    compat.apply()
    assert os.environ.get("USER")
    monkeypatch.delenv("USER")
    compat.ensure_user()
    assert os.environ["USER"]


def test_missing_config_tree_names_the_fix(monkeypatch, tmp_path):
    fake_pkg = tmp_path / "site" / "audiocraft"
    fake_pkg.mkdir(parents=True)
    monkeypatch.setattr(compat, "audiocraft_package_dir", lambda: fake_pkg)
    with pytest.raises(compat.AudiocraftSetupError, match="install-config"):
        compat.ensure_config_tree()


@pytest.mark.slow
def test_checkpoint_with_omegaconf_loads_under_weights_only(tmp_path):
    from omegaconf import OmegaConf

    ckpt = tmp_path / "checkpoint.th"
    cfg = OmegaConf.create({"optim": {"lr": 1e-4, "betas": [0.9, 0.95]}, "label": None, "seed": 2036})
    torch.save({"xp.cfg": cfg, "model": {"w": torch.ones(2)}, "epoch": 3}, ckpt)
    # Without the allow-list, torch >= 2.6 refuses it (the bug the shim answers), in a clean process.
    code = textwrap.dedent(f"""
        import torch
        try:
            torch.load({str(ckpt)!r})
        except Exception as e:
            print("REFUSED", type(e).__name__)
        else:
            print("LOADED")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "REFUSED" in out
    compat.apply()
    state = torch.load(ckpt)  # weights_only=True is torch's default here
    assert state["epoch"] == 3 and state["xp.cfg"].optim.lr == 1e-4


def test_debug_compression_model_is_the_same_everywhere():
    compat.apply()
    from audiocraft.models import CompressionModel

    torch.manual_seed(0)
    a = CompressionModel.get_pretrained("debug_compression_model")
    torch.manual_seed(123)
    b = CompressionModel.get_pretrained("debug_compression_model")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    # Building it does not consume the caller's random numbers.
    torch.manual_seed(0)
    expected = torch.randn(3)
    torch.manual_seed(0)
    CompressionModel.get_pretrained("debug_compression_model")
    assert torch.equal(torch.randn(3), expected)


@pytest.mark.slow
def test_compat_cli_check_reports_versions():
    out = subprocess.run([sys.executable, "-m", "genrecraft.core.compat", "check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "audiocraft 1.3.0" in out.stdout and "config tree" in out.stdout
