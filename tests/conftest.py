import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `import tiny`


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow") or os.environ.get("MEDEVAL_RUN_SLOW") == "1"
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with --run-slow or MEDEVAL_RUN_SLOW=1"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; none on this machine"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_store(tmp_path_factory):
    """No test reads or writes the user's store: each session gets an empty one unless a test sets its own."""
    previous = os.environ.get("MEDTASKS_STORE")
    os.environ["MEDTASKS_STORE"] = str(tmp_path_factory.mktemp("store"))
    yield
    if previous is None:
        os.environ.pop("MEDTASKS_STORE", None)
    else:
        os.environ["MEDTASKS_STORE"] = previous


def _shared_data() -> Path | None:
    env = os.environ.get("MEDTASKS_DATA")
    candidates = [Path(env)] if env else [ROOT.parent / "shared" / "data"]
    for path in candidates:
        if (path / "medqa").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files (MEDTASKS_DATA or ../shared/data); skips when absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("real benchmark data not found: set MEDTASKS_DATA or place it at ../shared/data")
    return path


@pytest.fixture(scope="session")
def real_store(shared_data, tmp_path_factory) -> Path:
    """A store holding everything importable from the real data, imported once per session."""
    from medtasks.sources import import_folder

    store = tmp_path_factory.mktemp("real_store")
    import_folder(shared_data, store)
    return store


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The embedded default model (materialized once into the user cache; ~1 min the first time)."""
    from medtasks.default_model import ensure_default_model

    return ensure_default_model()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), "llama", seed=0)


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory) -> Path:
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_mistral"), "mistral", seed=0)
