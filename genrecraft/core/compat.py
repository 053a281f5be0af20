"""audiocraft 1.3.0 on a modern torch stack: the few shims it needs, in one place.

Every shim answers one audiocraft behaviour and says which, so that it can be deleted once audiocraft fixes it.
:func:`apply` is idempotent and is called by every genrecraft entry point that runs audiocraft code: the Dora
entry point (:mod:`genrecraft.train`, so ``dora -P genrecraft run ...`` gets them in every worker process), the
library modules that build or load models, and the tests.

Run ``python -m genrecraft.core.compat check`` to see whether the installed audiocraft is usable, and
``python -m genrecraft.core.compat install-config`` to put audiocraft's Hydra config tree where it expects it.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from . import paths
from .errors import UserError

logger = logging.getLogger(__name__)

AUDIOCRAFT_VERSION = "1.3.0"
_applied = False


class AudiocraftSetupError(UserError, RuntimeError):
    """audiocraft is missing or installed in a way it cannot run from."""


def audiocraft_package_dir() -> Path:
    """Folder of the installed ``audiocraft`` package (without importing it: importing is slow)."""
    spec = importlib.util.find_spec("audiocraft")
    if spec is None or spec.origin is None:
        raise AudiocraftSetupError(
            "audiocraft is not installed. Run `make venv` in the genrecraft checkout (it installs audiocraft "
            f"{AUDIOCRAFT_VERSION} from its sdist with --no-deps), or see README.md, section 'Set-up'.")
    return Path(spec.origin).parent


def audiocraft_config_dir() -> Path:
    """audiocraft's Hydra config tree, which ``audiocraft/train.py`` reads from ``../config``."""
    return audiocraft_package_dir().parent / "config"


def ensure_config_tree() -> Path:
    # Shim for: the `config/` tree ships in audiocraft's sdist but is not installed with the package, while
    # audiocraft/train.py declares `config_path='../config'` and environment.py reads `../config/teams/*.yaml`.
    # Without it, `import audiocraft.train`, `dora run` and `continue_from=//sig/...` raise
    # MissingConfigException. An editable install of the sdist (what `make venv` does) has the tree in place.
    config = audiocraft_config_dir()
    if not (config / "config.yaml").is_file():
        raise AudiocraftSetupError(
            f"audiocraft's Hydra config tree is missing: expected {config}/config.yaml next to the installed "
            f"package {audiocraft_package_dir()}. audiocraft's wheel does not include it. Fix: run "
            "`python -m genrecraft.core.compat install-config` (copies it from the audiocraft sdist), or reinstall with "
            "`make venv`.")
    return config


def ensure_user() -> None:
    # Shim for: audiocraft's configs read ${oc.env:USER} (teams/default.yaml, config.yaml `dora.dir`) with no
    # default, so composing any config fails where USER is unset (containers, CI runners, cron).
    if not os.environ.get("USER"):
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "genrecraft"
        os.environ["USER"] = user or "genrecraft"


def ensure_dora_dir() -> None:
    # Not a bug fix but a default: audiocraft puts Dora outputs in /tmp/audiocraft_$USER, which is wiped on
    # reboot. genrecraft keeps them in the work dir unless AUDIOCRAFT_DORA_DIR says otherwise.
    os.environ.setdefault("AUDIOCRAFT_DORA_DIR", str(paths.dora_dir()))


def allow_checkpoint_globals() -> None:
    # Shim for: torch >= 2.6 defaults to torch.load(weights_only=True), and audiocraft's checkpoints
    # (utils/checkpoint.py, utils/export.py, models/loaders.py) pickle the OmegaConf experiment config. Every
    # reload (resume, continue_from, execute_only, export) then fails with "Unsupported global:
    # omegaconf.dictconfig.DictConfig". Rather than turning weights_only off for everything
    # (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1), allow-list exactly the classes an audiocraft checkpoint holds.
    import collections
    import typing

    import torch
    from omegaconf import DictConfig, ListConfig, nodes
    from omegaconf.base import ContainerMetadata, Metadata

    allowed = [
        DictConfig, ListConfig, ContainerMetadata, Metadata,
        nodes.AnyNode, nodes.StringNode, nodes.IntegerNode, nodes.FloatNode, nodes.BooleanNode,
        nodes.ValueNode, typing.Any, dict, list, int, float, str, bool, tuple, set,
        collections.defaultdict, collections.OrderedDict,
    ]
    torch.serialization.add_safe_globals(allowed)


DEBUG_COMPRESSION_SEED = 1234


def seed_debug_compression_model() -> None:
    # Shim for: `//pretrained/debug_compression_model` (audiocraft models/builders.py) draws its random weights
    # and k-means init from the global RNG, so every process that loads it (training, resume, export via
    # `MusicGen.get_pretrained(dir)`, evaluation) gets a different codec and the LM's tokens stop matching the
    # audio. Building it under a fixed private seed makes it one model everywhere; the caller's RNG is untouched.
    import copy

    import torch
    from audiocraft.models import builders, musicgen

    original = builders.get_debug_compression_model
    if getattr(original, "_genrecraft_seeded", False):
        return

    built: dict = {}

    def get_debug_compression_model(device="cpu", sample_rate: int = 32000):
        # Being one fixed model, it is built once per process (its k-means init takes seconds) and copied.
        key = (str(device), int(sample_rate))
        if key not in built:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(DEBUG_COMPRESSION_SEED)
                built[key] = original(device=device, sample_rate=sample_rate)
        return copy.deepcopy(built[key])

    get_debug_compression_model._genrecraft_seeded = True  # type: ignore[attr-defined]
    builders.get_debug_compression_model = get_debug_compression_model
    musicgen.get_debug_compression_model = get_debug_compression_model


AUDIOCRAFT_REPOS = ("facebook/musicgen-", "facebook/audiogen-")


def is_audiocraft_repo(name: str) -> bool:
    """Whether ``name`` is a released MusicGen/AudioGen repository, whose codec is its ``compression_state_dict.bin``."""
    return name.startswith(AUDIOCRAFT_REPOS)


def codec_of_musicgen_repos() -> None:
    # Shim for: CompressionModel.get_pretrained (audiocraft models/encodec.py), which solvers reach through
    # `compression_model_checkpoint: //pretrained/<name>`, knows only transformers' EnCodec repositories
    # (facebook/encodec_32khz), while a released MusicGen tokenizes with the audiocraft EnCodec in its own
    # repository's compression_state_dict.bin (what MusicGen.get_pretrained loads). A fine-tuning run on
    # facebook/encodec_32khz would then be compared with its base on tokens of another implementation. With this,
    # `//pretrained/facebook/musicgen-small` names the base model's own codec.
    from audiocraft.models import encodec, loaders

    original = encodec.CompressionModel.get_pretrained
    if getattr(original, "_genrecraft_repos", False):
        return

    def get_pretrained(name: str, device="cpu"):
        if is_audiocraft_repo(str(name)):
            return loaders.load_compression_model(name, device=device).to(device).eval()
        return original(name, device=device)

    get_pretrained._genrecraft_repos = True  # type: ignore[attr-defined]
    encodec.CompressionModel.get_pretrained = staticmethod(get_pretrained)


def quiet_hydra_version_base() -> None:
    # Shim for: audiocraft's entry point declares version_base='1.1' (its configs rely on 1.1 semantics), and
    # Hydra 1.3 then warns Hydra14MigrationWarning on every compose, i.e. many times per Dora command.
    import warnings

    from hydra.errors import Hydra14MigrationWarning

    warnings.filterwarnings("ignore", category=Hydra14MigrationWarning)
    # version_base 1.1 keeps Hydra's working-directory change (audiocraft relies on it); Hydra says so on each run
    warnings.filterwarnings("ignore", message="Future Hydra versions will no longer change working directory")


_APPLY_HOOKS: list = []


def on_apply(hook) -> None:
    """Run ``hook()`` in :func:`apply` (at once if it has run): how a layer above adds its own shim to audiocraft
    (a codec builder, :mod:`genrecraft.spectral_codec`) without this module importing it."""
    _APPLY_HOOKS.append(hook)
    if _applied:
        hook()


def apply() -> None:
    """Apply every shim (idempotent). Raises :class:`AudiocraftSetupError` with the fix if set-up is broken."""
    global _applied
    if _applied:
        return
    ensure_user()
    ensure_dora_dir()
    ensure_config_tree()
    quiet_hydra_version_base()
    allow_checkpoint_globals()
    seed_debug_compression_model()
    codec_of_musicgen_repos()

    for hook in _APPLY_HOOKS:
        hook()
    _applied = True


def install_config(version: str = AUDIOCRAFT_VERSION) -> Path:
    """Copy ``config/`` from audiocraft's sdist next to the installed package. Returns the config folder."""
    target = audiocraft_config_dir()
    if (target / "config.yaml").is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"audiocraft=={version}", "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise AudiocraftSetupError(
                f"could not download the audiocraft {version} sdist to get its config tree "
                f"(`{' '.join(cmd)}` exited {result.returncode}): {result.stderr.strip()[-500:]}")
        sdist = next(Path(tmp).glob("audiocraft-*.tar.gz"))
        staging = target.parent / f".config.tmp-{os.getpid()}"
        with tarfile.open(sdist) as tar:
            prefix = f"audiocraft-{version}/config/"
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
            for member in members:
                member.name = member.name[len(prefix):]
            tar.extractall(staging, members=members, filter="data")
        staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Check or repair the audiocraft installation that genrecraft runs on."""
    parser = argparse.ArgumentParser(prog="python -m genrecraft.core.compat", description=main.__doc__)
    parser.add_argument("command", choices=["check", "install-config"],
                        help="check: report what is installed and whether it is usable; "
                             "install-config: put audiocraft's Hydra config tree next to its package")
    args = parser.parse_args(argv)
    try:
        if args.command == "install-config":
            print(f"audiocraft config tree: {install_config()}")
            return 0
        apply()
    except AudiocraftSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    import audiocraft
    import torch
    print(f"audiocraft {audiocraft.__version__} at {audiocraft_package_dir()}")
    print(f"config tree: {audiocraft_config_dir()}")
    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    print(f"Dora dir: {os.environ['AUDIOCRAFT_DORA_DIR']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
