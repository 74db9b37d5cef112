import os
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep each test process single-threaded so pytest-xdist workers do not oversubscribe.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.fail(f"shared datasets not found at {SHARED_DATASETS} (expected ../shared/datasets beside the repo)")
    return SHARED_DATASETS
