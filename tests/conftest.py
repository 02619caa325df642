import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from rl_shop.paths import SHARED_DATA_DIR  # noqa: E402


@pytest.fixture(scope="session")
def shared_data():
    """The read-only real data beside the repository (tests and build scripts only)."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture
def seen_clarity_types() -> dict:
    """Collaborate-v0's default ``types`` with the Leader's clarity estimate on a scale of its own
    (``clarity_seen`` / ``clarity_seen_gain``) and a ``bad_plan_factor`` per type, as a
    loop-calibrated config has: the batched and torch envs must agree with the single one on it too."""
    import copy

    from envs.collaborate import load_default_kwargs

    types = copy.deepcopy(load_default_kwargs()["types"])
    for i, spec in enumerate(types.values()):
        spec.update(clarity_seen=[0.05 * i, 0.05 * i + 0.2], clarity_seen_gain=0.1 + 0.05 * i, bad_plan_factor=0.1 * i)
    return types
