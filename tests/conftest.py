import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Isolate every test session: experiments and user configs in a fresh work dir; caches (converted models,
# embeddings) where CI or the user points GENRECRAFT_CACHE_DIR, else a fresh folder too.
_session_root = Path(tempfile.mkdtemp(prefix="genrecraft-tests-"))
os.environ["GENRECRAFT_WORK_DIR"] = str(_session_root / "work")
os.environ.pop("AUDIOCRAFT_DORA_DIR", None)
os.environ.setdefault("GENRECRAFT_CACHE_DIR", str(_session_root / "cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_sessionfinish(session, exitstatus):
    """The session's work dir holds every experiment of the run (several GB with the real-config tests): removed
    at the end unless GENRECRAFT_KEEP_TEST_DIR is set (to look at what a failing run left)."""
    if os.environ.get("GENRECRAFT_KEEP_TEST_DIR"):
        print(f"\ntest work dir kept: {_session_root}")
    else:
        shutil.rmtree(_session_root, ignore_errors=True)


@pytest.fixture(scope="session")
def work_dir() -> Path:
    from genrecraft.core import paths

    path = paths.work_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def standin_hub() -> Path:
    """A stand-in Hugging Face cache with MusicGen-small, its EnCodec and T5 (random weights, real formats), built
    once per test run (or reused from the cache dir). Use it in subprocesses with ``standin_hub.env(path)``."""
    from genrecraft.core import paths
    from genrecraft import standin_hub

    return standin_hub.build(paths.cache_dir() / "standin-hub")
