"""Runtime loader tests on hand-built ONNX graphs and hand-written cards (no SB3 involved).

The graph is ``out = obs @ W + b`` with W and b chosen so every expected action, Q-value and
probability below can be worked out by hand.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rl_shop.policies.base import Policy
from rl_shop.policies.card import PolicyCard, PolicyCardError, load_card
from rl_shop.policies.loader import (
    PolicyCardMismatch,
    PolicyLoadError,
    PolicyWeightsError,
    RuntimeLayout,
    UnknownLayoutError,
    load_policy,
    register_layout,
    unregister_layout,
)

ENV_ID = "rl_shop_test/Toy-v3"
FEATURES = ("a", "b", "c")
ACTIONS = ("ask_size", "ask_color", "ask_brand", "stop")
LAYOUT = RuntimeLayout(ENV_ID, "tests.toy_layout", "toy-1", FEATURES, ACTIONS)

# out[0] = a, out[1] = b, out[2] = a + b, out[3] = -a ; plus bias.
W = np.array([[1, 0, 1, -1], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32)


def _write_graph(path: Path, bias: np.ndarray, output_name: str) -> None:
    obs = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 3])
    out = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 4])
    nodes = [
        helper.make_node("MatMul", ["obs", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [obs],
        [out],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(bias.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _write_card(directory: Path, algo: str, output_kind: str, **overrides: object) -> Path:
    digest = hashlib.sha256((directory / "policy.onnx").read_bytes()).hexdigest()
    card = {
        "schema_version": 1,
        "env_id": ENV_ID,
        "env_version": 3,
        "featurizer": {"module": LAYOUT.module, "layout_version": "toy-1", "feature_names": list(FEATURES)},
        "observation_space": {"kind": "Box", "shape": [3], "dtype": "float32", "low": [-1e3] * 3, "high": [1e3] * 3},
        "action_space": {"kind": "Discrete", "n": 4, "names": list(ACTIONS)},
        "normalization": None,
        "onnx": {
            "file": "policy.onnx",
            "sha256": digest,
            "opset": 17,
            "input_name": "obs",
            "output_name": output_kind,
            "output_kind": output_kind,
            "exporter": "hand-built onnx.helper graph",
        },
        "training": {"algo": algo, "run_dir": "checkpoints/runs/toy/20260101-000000-s0", "config": {}},
        "exported_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
    }
    for dotted, value in overrides.items():
        node = card
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = directory / "policy_card.json"
    path.write_text(json.dumps(card, indent=2))
    return path


@pytest.fixture(autouse=True)
def _toy_layout():
    register_layout(ENV_ID, LAYOUT, replace=True)
    yield
    unregister_layout(ENV_ID)


@pytest.fixture
def dqn_dir(tmp_path: Path) -> Path:
    _write_graph(tmp_path / "policy.onnx", np.array([0, 0, 0, 0.5]), "q_values")
    _write_card(tmp_path, "DQN", "q_values")
    return tmp_path


@pytest.fixture
def ppo_dir(tmp_path: Path) -> Path:
    bias = np.log(np.array([1.0, 2.0, 3.0, 4.0]))
    _write_graph(tmp_path / "policy.onnx", bias, "logits")
    _write_card(tmp_path, "PPO", "logits")
    return tmp_path


# ------------------------------------------------------------------------------ behaviour
def test_dqn_q_values_and_masked_argmax(dqn_dir: Path) -> None:
    policy = load_policy(dqn_dir, expect_env_id=ENV_ID)
    assert isinstance(policy, Policy)
    obs = np.array([1.0, 2.0, 0.0])
    # Q = [a, b, a+b, -a] + [0, 0, 0, 0.5] = [1, 2, 3, -0.5]
    np.testing.assert_allclose(policy.q_values(obs), [1.0, 2.0, 3.0, -0.5], atol=1e-6)
    assert policy.act(obs) == 2
    assert policy.act(obs, np.array([True, True, False, True])) == 1
    assert policy.act(obs, np.array([False, False, False, True])) == 3
    batch = np.array([[1.0, 2.0, 0.0], [-2.0, -1.0, 5.0]])  # second row: Q = [-2, -1, -3, 2.5]
    np.testing.assert_array_equal(policy.act_batch(batch), [2, 3])
    np.testing.assert_array_equal(policy.act_batch(batch, np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)), [2, 1])
    with pytest.raises(TypeError, match="Q-values, not a distribution"):
        policy.action_probabilities(obs)


def test_ties_break_to_lowest_index(dqn_dir: Path) -> None:
    policy = load_policy(dqn_dir)
    # obs (0.5, 0.5, 0): Q = [0.5, 0.5, 1.0, 0.0]; mask out the max -> tie between 0 and 1.
    assert policy.act(np.array([0.5, 0.5, 0.0]), np.array([True, True, False, True])) == 0


def test_ppo_probabilities_masked_softmax(ppo_dir: Path) -> None:
    policy = load_policy(ppo_dir)
    zero = np.zeros(3)
    # logits = log([1, 2, 3, 4]) -> softmax = [1, 2, 3, 4] / 10
    np.testing.assert_allclose(policy.action_probabilities(zero), [0.1, 0.2, 0.3, 0.4], atol=1e-6)
    # masking actions 1 and 3 leaves [1, 3] / 4
    mask = np.array([True, False, True, False])
    np.testing.assert_allclose(policy.action_probabilities(zero, mask), [0.25, 0.0, 0.75, 0.0], atol=1e-6)
    assert policy.act(zero) == 3 and policy.act(zero, mask) == 2
    with pytest.raises(TypeError, match="not Q-values"):
        policy.q_values(zero)


def test_bad_observations_and_masks_are_explained(dqn_dir: Path) -> None:
    policy = load_policy(dqn_dir)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        policy.act(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        policy.act(np.array([0.0, math.nan, 0.0]))
    with pytest.raises(ValueError, match="allows no action"):
        policy.act(np.zeros(3), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="action mask must have shape"):
        policy.act(np.zeros(3), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="numeric"):
        policy.act(np.array(["x", "y", "z"]))


def test_loads_from_card_or_onnx_path(dqn_dir: Path) -> None:
    assert load_policy(dqn_dir / "policy_card.json").card.env_id == ENV_ID
    assert load_policy(dqn_dir / "policy.onnx").n_actions == 4


# ------------------------------------------------------------------------------ refusals
def test_tampered_layout_version_is_refused(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", featurizer__layout_version="toy-0")
    with pytest.raises(PolicyCardMismatch) as info:
        load_policy(dqn_dir)
    message = str(info.value)
    assert "layout version" in message and "'toy-0'" in message and "'toy-1'" in message
    assert "python experiments/export.py run_dir=checkpoints/runs/toy/20260101-000000-s0" in message


def test_changed_feature_names_are_refused(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", featurizer__feature_names=["a", "c", "b"])
    with pytest.raises(PolicyCardMismatch, match="first difference at index 1"):
        load_policy(dqn_dir)


def test_tampered_action_names_are_refused(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", action_space__names=["ask_size", "ask_color", "stop", "ask_brand"])
    with pytest.raises(PolicyCardMismatch, match="action names"):
        load_policy(dqn_dir)


def test_caller_action_names_override_module(dqn_dir: Path) -> None:
    with pytest.raises(PolicyCardMismatch, match="added \\['eq1'\\]"):
        load_policy(dqn_dir, expect_action_names=["ask_size", "ask_color", "ask_brand", "eq1"])


def test_tampered_sha256_is_refused(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", onnx__sha256="0" * 64)
    with pytest.raises(PolicyCardMismatch, match="sha256"):
        load_policy(dqn_dir)


def test_swapped_weights_are_refused(dqn_dir: Path) -> None:
    _write_graph(dqn_dir / "policy.onnx", np.array([9.0, 0, 0, 0]), "q_values")  # card still has the old hash
    with pytest.raises(PolicyCardMismatch, match="changed or replaced"):
        load_policy(dqn_dir)


def test_wrong_env_is_refused(dqn_dir: Path) -> None:
    with pytest.raises(PolicyCardMismatch, match="caller expects rl_shop/Clarify-v0"):
        load_policy(dqn_dir, expect_env_id="rl_shop/Clarify-v0")


def test_unregistered_env_without_importable_featurizer(dqn_dir: Path) -> None:
    unregister_layout(ENV_ID)
    with pytest.raises(UnknownLayoutError, match="cannot be imported"):
        load_policy(dqn_dir)


# ------------------------------------------------------------------------------ corrupt files
def test_corrupt_onnx_gives_clear_error(dqn_dir: Path) -> None:
    (dqn_dir / "policy.onnx").write_bytes(b"this is not a protobuf at all" * 10)
    _write_card(dqn_dir, "DQN", "q_values")  # consistent hash, so the ONNX parse itself must fail
    with pytest.raises(PolicyWeightsError, match="not a loadable ONNX model"):
        load_policy(dqn_dir)


def test_missing_onnx(dqn_dir: Path) -> None:
    (dqn_dir / "policy.onnx").unlink()
    with pytest.raises(PolicyWeightsError, match="missing"):
        load_policy(dqn_dir)


def test_graph_shape_disagreeing_with_card(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", onnx__output_name="logits_x")
    with pytest.raises(PolicyWeightsError, match="outputs"):
        load_policy(dqn_dir)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"schema_version": 99}', "schema_version=99"),
        ('{"schema_version": 1, "env_id": "x"}', "does not follow the card schema"),
    ],
)
def test_corrupt_card_gives_clear_error(dqn_dir: Path, content: str, match: str) -> None:
    (dqn_dir / "policy_card.json").write_text(content)
    with pytest.raises(PolicyCardError, match=match):
        load_policy(dqn_dir)


def test_inconsistent_card_is_rejected(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "logits")  # DQN exports Q-values, never logits
    with pytest.raises(PolicyCardError, match="algo DQN exports q_values"):
        load_card(dqn_dir / "policy_card.json")
    _write_card(dqn_dir, "DQN", "q_values", action_space__names=["only_one"])
    with pytest.raises(PolicyCardError, match="4 actions but 1 action names"):
        load_card(dqn_dir / "policy_card.json")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no exported policy"):
        load_policy(tmp_path / "nowhere")
    with pytest.raises(PolicyCardError, match="policy card not found"):
        load_policy(tmp_path)


def test_card_round_trips_infinite_bounds(dqn_dir: Path) -> None:
    _write_card(dqn_dir, "DQN", "q_values", observation_space__low=["-Infinity"] * 3)
    card = load_card(dqn_dir / "policy_card.json")
    assert card.observation_space.low == [-math.inf] * 3
    again = PolicyCard.model_validate_json(card.model_dump_json())
    assert again == card


# ------------------------------------------------------------------------------ import hygiene
def test_loader_imports_neither_sb3_nor_torch(dqn_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The runtime path (load + act) must work without stable-baselines3 (and needs no torch)."""
    module_dir = tmp_path_factory.mktemp("layout_module")
    (module_dir / "toy_layout_mod.py").write_text(
        f"LAYOUT_VERSION = 'toy-1'\nFEATURE_NAMES = {FEATURES!r}\nACTION_NAMES = {ACTIONS!r}\n"
    )
    _write_card(dqn_dir, "DQN", "q_values", featurizer__module="toy_layout_mod")
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(module_dir)!r})
        from rl_shop.policies.loader import load_policy
        policy = load_policy({str(dqn_dir)!r})
        assert policy.act(np.array([1.0, 2.0, 0.0])) == 2
        heavy = sorted(m for m in ("stable_baselines3", "sb3_contrib", "torch") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout, result.stdout


# ------------------------------------------------------------------------------ env version (issue 13)
def test_card_env_version_disagreeing_with_the_running_env_is_refused(dqn_dir: Path) -> None:
    # The card says env version 2 while the running code registers rl_shop_test/Toy-v3.
    _write_card(dqn_dir, "DQN", "q_values", env_version=2)
    with pytest.raises(PolicyCardMismatch) as info:
        load_policy(dqn_dir)
    message = str(info.value)
    assert "env version" in message and "v2" in message and "v3" in message, message
    assert "python experiments/train.py" in message and "python experiments/export.py" in message, message


def test_card_for_another_version_of_a_registered_env_is_refused(
    dqn_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A card for Toy-v4 whose featurizer module is importable and unchanged: before the fix it
    # loaded, although this runtime knows the env only as Toy-v3.
    module_dir = tmp_path_factory.mktemp("layout_module_v4")
    (module_dir / "toy_layout_v4_mod.py").write_text(
        f"LAYOUT_VERSION = 'toy-1'\nFEATURE_NAMES = {FEATURES!r}\nACTION_NAMES = {ACTIONS!r}\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    _write_card(
        dqn_dir, "DQN", "q_values", env_id="rl_shop_test/Toy-v4", env_version=4, featurizer__module="toy_layout_v4_mod"
    )
    with pytest.raises(PolicyCardMismatch) as info:
        load_policy(dqn_dir)
    message = str(info.value)
    assert "rl_shop_test/Toy-v4" in message and "rl_shop_test/Toy-v3" in message, message
    assert "env version" in message, message


def test_card_without_env_version_is_checked_by_its_env_id(dqn_dir: Path) -> None:
    # Old cards may lack env_version: the -vN of their env id stands for it (v3 here: loads).
    _write_card(dqn_dir, "DQN", "q_values", env_version=None)
    assert load_policy(dqn_dir).card.env_id == ENV_ID


def test_shipped_guider_card_relabelled_to_another_env_version_is_refused(tmp_path: Path) -> None:
    # The shipped Guider export with its card relabelled rl_shop/Clarify-v1: the featurizer matches,
    # so only the version check can refuse it.
    import shutil

    from rl_shop.paths import REPO_ROOT

    src = REPO_ROOT / "checkpoints" / "guider"
    if not (src / "policy_card.json").is_file():
        pytest.skip("no shipped Guider export")
    shutil.copytree(src, tmp_path / "guider")
    card_path = tmp_path / "guider" / "policy_card.json"
    card = json.loads(card_path.read_text())
    assert card["env_id"] == "rl_shop/Clarify-v0"
    card.update(env_id="rl_shop/Clarify-v1", env_version=1)
    card_path.write_text(json.dumps(card))
    with pytest.raises(PolicyCardMismatch, match=r"rl_shop/Clarify-v1 \(env version 1\).*rl_shop/Clarify-v0"):
        load_policy(tmp_path / "guider")
