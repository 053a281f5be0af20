"""End to end through Dora on CPU: the tiny config trains, checkpoints, and resumes with continue_from."""

import pytest
import torch

from genrecraft import experiments
from genrecraft.synth import SongSpec
from genrecraft.synth import write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dset(work_dir, tmp_path_factory):
    from genrecraft.core import paths

    specs = [SongSpec(key=k, mode=m, bpm=b, style="synthpop", seed=i)
             for i, (k, m, b) in enumerate([("C", "major", 120), ("G", "major", 124), ("A", "minor", 118),
                                            ("F", "major", 122), ("D", "minor", 126), ("E", "minor", 120)])]
    write_dataset(tmp_path_factory.mktemp("data"), "dora_e2e", specs, config_dir=paths.user_config_dir())
    return "audio/dora_e2e"


def test_train_two_epochs_then_continue_from_sig(dset):
    argv = ["solver=musicgen/genrecraft_tiny", f"dset={dset}"]
    xp = experiments.run(argv, quiet=True)
    hist = experiments.history(xp)
    assert len(hist) == 2
    assert hist[1]["valid"]["ce"] < hist[0]["valid"]["ce"]
    assert str(xp.folder).startswith(str(experiments.env()["AUDIOCRAFT_DORA_DIR"]))

    # The checkpoint reloads under torch's weights_only default (compat shim) and holds the best state.
    from genrecraft.core import compat

    compat.apply()
    state = torch.load(experiments.checkpoint_path(xp), map_location="cpu")
    assert len(state["history"]) == 2 and state["xp.sig"] == xp.sig and state["best_state"]["model"]

    # Continue from that experiment's best state into a new one.
    argv2 = argv + [f"continue_from=//sig/{xp.sig}", "optim.epochs=1"]
    xp2 = experiments.run(argv2, quiet=True)
    assert xp2.sig != xp.sig
    hist2 = experiments.history(xp2)
    # Starting from the trained weights, the first epoch is already better than the parent's epoch 1.
    assert hist2[0]["valid"]["ce"] < hist[0]["valid"]["ce"]
    log = (xp2.folder / "solver.log.0").read_text()
    assert f"Continuing from provided checkpoint: //sig/{xp.sig}" in log


def test_missing_dataset_is_a_clear_error():
    with pytest.raises(experiments.ExperimentError, match="dset=audio/<name>"):
        experiments.run(["solver=musicgen/genrecraft_tiny"], quiet=True)


def test_warmup_longer_than_the_run_is_a_clear_error(dset):
    with pytest.raises(experiments.ExperimentError, match="schedule.cosine.warmup=100"):
        experiments.run(["solver=musicgen/genrecraft_tiny_full", f"dset={dset}", "schedule.cosine.warmup=100"],
                        quiet=True)
