"""Every yaml in audiocraft_configs/ composes with audiocraft's tree, the way Dora composes it."""

from pathlib import Path

import pytest

from genrecraft.models import compose

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "audiocraft_configs"
SOLVERS = sorted(p.relative_to(CONFIG_ROOT / "solver").with_suffix("").as_posix()
                 for p in (CONFIG_ROOT / "solver").rglob("*.yaml"))
DSETS = sorted(p.relative_to(CONFIG_ROOT / "dset").with_suffix("").as_posix()
               for p in (CONFIG_ROOT / "dset").rglob("*.yaml"))


def test_config_tree_is_not_empty():
    assert "musicgen/genrecraft_tiny" in SOLVERS
    assert "audio/genrecraft_unset" in DSETS


@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_config_composes(solver):
    cfg = compose([f"solver={solver}"])
    assert cfg.solver  # every solver config names its solver class
    assert cfg.sample_rate and cfg.channels
    assert cfg.compression_model_checkpoint
    # Values we override must have resolved to concrete types (not left as "???").
    assert cfg.dataset.batch_size > 0 and cfg.optim.lr > 0


@pytest.mark.parametrize("dset", DSETS)
def test_dset_config_composes(dset):
    cfg = compose(["solver=musicgen/genrecraft_tiny", f"dset={dset}"])
    assert cfg.datasource.max_sample_rate == 32000
    assert cfg.datasource.max_channels == 1


def test_tiny_config_is_offline_and_small():
    cfg = compose(["solver=musicgen/genrecraft_tiny"])
    assert cfg.conditioners.description.model == "lut"
    assert cfg.conditioners.description.lut.tokenizer == "noop"
    assert cfg.compression_model_checkpoint == "//pretrained/debug_compression_model"
    assert cfg.transformer_lm.dim == 64 and cfg.transformer_lm.num_layers == 2
    assert cfg.transformer_lm.memory_efficient is True  # packed q/k/v, as in MusicGen
    assert cfg.dataset.num_workers == 0 and cfg.device == "cpu"


def test_user_config_dir_is_searched(work_dir):
    from genrecraft.core import paths

    dset = paths.user_config_dir() / "dset" / "audio"
    dset.mkdir(parents=True, exist_ok=True)
    (dset / "user_example.yaml").write_text(
        "# @package __global__\ndatasource:\n  max_sample_rate: 32000\n  max_channels: 1\n"
        "  train: /data/egs/train\n  valid: /data/egs/valid\n  evaluate: /data/egs/test\n  generate: /data/egs/test\n")
    cfg = compose(["solver=musicgen/genrecraft_tiny", "dset=audio/user_example"])
    assert cfg.datasource.train == "/data/egs/train"


@pytest.mark.parametrize("recipe", ["genrecraft_tiny_lora", "genrecraft_small_lora", "genrecraft_medium_lora"])
def test_lora_recipes_state_every_option_of_lora_config(recipe):
    """LoRA options are declared once, as LoraConfig fields: a recipe's lora block is read whole into one
    (genrecraft.solvers.lora_config), and states each field so that `lora.<field>=...` overrides work."""
    import dataclasses

    import lora
    from genrecraft.solvers import lora_config

    block = compose([f"solver=musicgen/{recipe}"]).lora
    assert set(block) == {f.name for f in dataclasses.fields(lora.LoraConfig)} | {"base"}
    config = lora_config(block)
    assert config.r == block.r and config.targets == tuple(block.targets)
    with pytest.raises(ValueError, match="unknown LoRA config keys"):
        lora_config({**block, "rank": 4})
