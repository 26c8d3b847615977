import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `import tiny`


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
def tiny_llama(tmp_path_factory) -> Path:
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), "llama", seed=0)


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory) -> Path:
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_mistral"), "mistral", seed=0)
