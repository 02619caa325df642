"""``rl_shop/Clarify-v0``: the Guider's clarification dialogue with a simulated shopper (MACDF 3.3).

The env is a table lookup over a precomputed ``IntentPool`` (see ``envs/intent_pool.py``), so it
steps about as fast as CartPole. ``envs/clarify_batched.py`` runs the same dynamics over many
shoppers with numpy and agrees with this class step for step on the same seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import yaml

from envs import clarify_rng as rng
from envs.intent_pool import N_MASKS, IntentPool, IntentPoolError, load_or_build_intent_pool
from rl_shop.paths import CONFIG_DIR
from rl_shop.policies.features.clarify import (
    N_FEATURES,
    N_SLOTS,
    DialogueState,
    featurize,
)
from rl_shop.sim.slots import QUERY_TYPES, SLOTS

CONFIG_PATH: Path = CONFIG_DIR / "env" / "clarify.yaml"

ACTION_NAMES: tuple[str, ...] = tuple(f"ask_{s}" for s in SLOTS) + ("suggest", "stop")
SUGGEST: int = N_SLOTS
STOP: int = N_SLOTS + 1
N_ACTIONS: int = len(ACTION_NAMES)

# MASK_TABLE[blocked] = action mask when the slots in `blocked` may not be asked again.
MASK_TABLE: np.ndarray = np.ones((N_MASKS, N_ACTIONS), dtype=bool)
MASK_TABLE[:, :N_SLOTS] = ((np.arange(N_MASKS)[:, None] >> np.arange(N_SLOTS)) & 1) == 0
MASK_TABLE.setflags(write=False)
_MASK_ROWS: list[np.ndarray] = list(MASK_TABLE)
POPCOUNT: np.ndarray = np.array([bin(m).count("1") for m in range(N_MASKS)], dtype=np.int64)
# KTH_BIT[mask, k] = the k-th lowest set bit of mask (as a bit value), 0 past the last one.
KTH_BIT: np.ndarray = np.zeros((N_MASKS, N_SLOTS), dtype=np.int64)
for _m in range(N_MASKS):
    _bits = [1 << b for b in range(N_SLOTS) if (_m >> b) & 1]
    KTH_BIT[_m, : len(_bits)] = _bits
KTH_BIT.setflags(write=False)
_POPCOUNT_LIST: list[int] = POPCOUNT.tolist()
_KTH_BIT_LIST: list[list[int]] = KTH_BIT.tolist()


@dataclass(frozen=True)
class ClarifyParams:
    """Validated coefficients of the clarification env (defaults: ``configs/env/clarify.yaml``)."""

    alpha: float
    beta: float
    normalize_gain: bool
    w_T: float
    abandon_penalty: float
    confirm_threshold: float
    max_rounds: int
    pool_size: int
    pool_seed: int
    sim_config: Mapping[str, Any] | None


def load_default_kwargs(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The ``kwargs`` block of the env config file, with a clear error if it is missing or malformed."""
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"env config {path} not found; it ships with the repository (configs/env/)") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"env config {path} is not valid YAML: {exc}") from exc
    if not isinstance(cfg, dict) or not isinstance(cfg.get("kwargs"), dict):
        raise ValueError(f"env config {path} must be a mapping with a 'kwargs' mapping")
    return dict(cfg["kwargs"])


def resolve_params(**overrides: Any) -> ClarifyParams:
    """Merge ``overrides`` over the config defaults and validate every coefficient."""
    kwargs = load_default_kwargs()
    unknown = set(overrides) - set(kwargs)
    if unknown:
        raise TypeError(
            f"unknown Clarify-v0 argument(s) {sorted(unknown)}; valid ones are {sorted(kwargs)} "
            "(plus intent_pool and render_mode)"
        )
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    missing = {f for f in ClarifyParams.__dataclass_fields__} - set(kwargs)
    if missing:
        raise ValueError(f"{CONFIG_PATH} lacks required kwargs {sorted(missing)}")

    def number(name: str, low: float = 0.0, high: float = math.inf, low_open: bool = False) -> float:
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"Clarify-v0 argument {name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
            raise ValueError(f"Clarify-v0 argument {name}={value} is out of range {bound}")
        return value

    def integer(name: str, low: int) -> int:
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"Clarify-v0 argument {name} must be an integer >= {low}, got {value!r}")
        return int(value)

    sim_config = kwargs["sim_config"]
    if sim_config is not None and not isinstance(sim_config, Mapping):
        try:  # a Hydra DictConfig
            from omegaconf import OmegaConf

            sim_config = OmegaConf.to_container(sim_config, resolve=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with a clear message
            raise ValueError(f"sim_config must be a mapping or null, got {sim_config!r}") from exc
    if not isinstance(kwargs["normalize_gain"], (bool, np.bool_)):
        raise ValueError(f"normalize_gain must be true or false, got {kwargs['normalize_gain']!r}")
    return ClarifyParams(
        alpha=number("alpha"),
        beta=number("beta"),
        normalize_gain=bool(kwargs["normalize_gain"]),
        w_T=number("w_T"),
        abandon_penalty=number("abandon_penalty"),
        confirm_threshold=number("confirm_threshold", 0.0, 1.0, low_open=True),
        max_rounds=integer("max_rounds", 1),
        pool_size=integer("pool_size", 1),
        pool_seed=integer("pool_seed", 0),
        sim_config=sim_config,
    )


def resolve_pool(params: ClarifyParams, intent_pool: IntentPool | None) -> IntentPool:
    """The given pool, or the cached pool of the shipped catalog for ``params``."""
    if intent_pool is None:
        return load_or_build_intent_pool(params.pool_size, params.pool_seed, params.sim_config)
    if not isinstance(intent_pool, IntentPool):
        raise IntentPoolError(f"intent_pool must be an envs.intent_pool.IntentPool, got {type(intent_pool).__name__}")
    return intent_pool


def entropy_table(pool: IntentPool, normalize_gain: bool) -> np.ndarray:
    """H[i, m] in the unit of Intent_Gain: log2 |C|, divided by log2 |catalog| when normalized."""
    if normalize_gain and pool.catalog_size > 1:
        return pool.log2_candidates / pool.log2_catalog_size
    return pool.log2_candidates


class ClarifyEnv(gym.Env):
    """The Guider asks a simulated shopper about slots until it hands the query over to search.

    Each episode draws one intent from a precomputed pool (``envs.intent_pool.IntentPool``). The
    first query states some of the intent's relevant slots; the rest are hidden. The belief is
    uniform over C(s), the catalog products consistent with the correctly revealed slots.

    ## Action Space

    ``Discrete(11)``: ``ask_<slot>`` for the 9 slots of ``rl_shop.sim.slots.SLOTS`` (ids 0-8),
    ``suggest`` (9: show the top-5 of C(s) for confirmation), ``stop`` (10: hand over to search).
    ``ACTION_NAMES`` holds the names. ``action_masks()`` (and ``info["action_mask"]``) mark asking
    a slot that is already known or was already asked as invalid; ``suggest`` and ``stop`` are
    always valid. An invalid question is still accepted: it costs a round and reveals nothing.

    ## Observation Space

    ``Box(0, 1, (47,), float32)`` built only by ``rl_shop.policies.features.clarify.featurize``
    (query type one-hot, known / no-preference / don't-know / asked flags per slot, rounds used,
    log2 |C| relative to the catalog, share of known slots); see that module for the layout.

    ## Rewards

    MACDF Eq. 3, ``R(s, a) = alpha * Intent_Gain - beta * Interaction_Rounds``, with
    ``Intent_Gain = H(s) - H(s')``, ``H(s) = log2 |C(s)|`` (divided by log2 |catalog| if
    ``normalize_gain``) and ``Interaction_Rounds`` = 1 for a question or suggestion, 0 for stop.
    At a hand-over (``stop`` or a confirmed suggestion) ``+ w_T * Accuracy@5`` with
    ``Accuracy@5 = |G ∩ C(s)| / |C(s)|``: the expected share of gold products among the shown
    top-min(5, |C|) when search ranks C(s) uniformly. When the shopper leaves, ``- abandon_penalty``.

    Shopper answers (probabilities from the intent, i.e. the simulator's config): an irrelevant
    slot gets "no preference"; a relevant one gets "don't know" (``p_dont_know``), a noisy wrong
    value (``p_wrong``: recorded as known by the Guider but it does not narrow C, since the true
    constraint stays unrevealed) or the true value (the slot is revealed, C shrinks). A suggestion
    with ``Accuracy@5 >= confirm_threshold`` is confirmed; otherwise the shopper rejects it and
    volunteers one hidden relevant slot, chosen uniformly.

    ## Starting State

    A pool intent drawn uniformly; the stated slots are known, rounds = 0.

    ## Episode End

    Terminated on ``stop``, on a confirmed suggestion, or when the shopper leaves: a question or
    suggestion asked after ``patience`` answered rounds. Truncated when ``max_rounds`` rounds are
    used (no terminal Accuracy@5 term then; ``info["accuracy_at_5"]`` still reports it).

    ``info``: ``intent_gain``, ``rounds``, ``query_type``, ``action_mask``, ``outcome`` and
    ``accuracy_at_5`` (absent mid-episode, so that info dicts compare equal; at the end the
    hand-over's Accuracy@5, 0.0 if she left, the belief's Accuracy@5 if truncated).

    ## Arguments

    ``alpha``, ``beta``, ``normalize_gain``, ``w_T``, ``abandon_penalty``, ``confirm_threshold``,
    ``max_rounds``, ``pool_size``, ``pool_seed``, ``sim_config``: default to
    ``configs/env/clarify.yaml``. ``intent_pool``: an ``IntentPool`` to use instead of the
    cached pool of the shipped catalog. ``render_mode``: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # text frames; fps only silences the checker

    def __init__(
        self,
        *,
        intent_pool: IntentPool | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.params = resolve_params(**kwargs)
        self.pool = resolve_pool(self.params, intent_pool)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (N_FEATURES,), np.float32)
        self._H = entropy_table(self.pool, self.params.normalize_gain)
        self._n = len(self.pool)
        self._log2n = self.pool.log2_catalog_size
        self._max_rounds = self.params.max_rounds
        self._key: int | None = None
        self._episode = 0
        self._ekey = 0
        self._reset_state(0)

    # ------------------------------------------------------------------ state
    def _reset_state(self, intent: int) -> None:
        p = self.pool
        self._i = intent
        self._rel = int(p.relevant[intent])
        self._stated = int(p.stated[intent])
        self._revealed = self._stated
        self._known = self._stated
        self._nopref = 0
        self._dontknow = 0
        self._asked = 0
        self._rounds = 0
        self._t = 0
        self._patience = int(p.patience[intent])
        self._pdk = p.p_dont_know[intent].tolist()
        self._pw = p.p_wrong[intent].tolist()
        # Row views (no copies): an episode reads a handful of entries of its intent's tables.
        self._Hrow = self._H[intent]
        self._acc_row = p.accuracy[intent]
        self._log2c_row = p.log2_candidates[intent]
        self._qt = int(p.query_type[intent])

    def dialogue_state(self) -> DialogueState:
        """The Guider-visible state (no hidden intent), the input of the featurizer."""
        return DialogueState(
            self._qt,
            self._known,
            self._nopref,
            self._dontknow,
            self._asked,
            self._rounds,
            self._max_rounds,
            float(self._log2c_row[self._revealed]),
            self._log2n,
        )

    def action_masks(self) -> np.ndarray:
        """Valid actions (bool[11]) for MaskablePPO: no re-asking a known or asked slot."""
        return _MASK_ROWS[self._known | self._asked].copy()

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a dialogue; ``reset(seed=s)`` then plain ``reset()`` calls replay exactly."""
        super().reset(seed=seed)
        if seed is not None:
            self._key = int(seed) & rng.MASK64
            self._episode = 0
        elif self._key is None:
            self._key = int(self.np_random.integers(0, 2**63))
            self._episode = 0
        else:
            self._episode += 1
        self._ekey = rng.episode_key(self._key, self._episode)
        intent = int(rng.unit53(rng.bits(self._ekey, 0)) * self._n)
        self._reset_state(intent)
        info = {
            "intent_gain": 0.0,
            "rounds": 0,
            "query_type": QUERY_TYPES[self._qt],
            "action_mask": self.action_masks(),
            "intent_index": intent,
        }
        return featurize(self.dialogue_state()), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply one Guider action; see the class docstring for the dynamics and Eq. 3."""
        if self._key is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"action {action!r} is not in 0..{N_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
        prm = self.params
        t = self._t + 1
        self._t = t
        # Counter-based draws are pure functions of (episode key, t), so each is computed only
        # where it is used; the batched env computes all of them and gets the same values.
        h_before = self._Hrow[self._revealed]
        interaction_rounds = 0
        terminated = False
        handover = False
        leaves = False
        outcome: str
        if a == STOP:
            terminated = handover = True
            outcome = "stop"
        else:
            interaction_rounds = 1
            if self._rounds >= self._patience:
                leaves = terminated = True
                outcome = "shopper_left"
            elif a == SUGGEST:
                if self._acc_row[self._revealed] >= prm.confirm_threshold:
                    terminated = handover = True
                    outcome = "confirmed"
                else:
                    hidden = self._rel & ~self._revealed
                    count = _POPCOUNT_LIST[hidden]
                    if count:
                        u_volunteer = rng.volunteer_draw(rng.bits(self._ekey, t))
                        bit = _KTH_BIT_LIST[hidden][int(u_volunteer * count)]
                        self._revealed |= bit
                        self._known |= bit
                        self._dontknow &= ~bit
                        outcome = "rejected_volunteered"
                    else:
                        outcome = "rejected"
            else:
                bit = 1 << a
                if (self._known | self._asked) & bit:
                    outcome = "repeated"
                else:
                    self._asked |= bit
                    if not self._rel & bit:
                        self._nopref |= bit
                        outcome = "no_preference"
                    elif (u_answer := rng.answer_draw(rng.bits(self._ekey, t))) < self._pdk[a]:
                        self._dontknow |= bit
                        outcome = "dont_know"
                    elif u_answer < self._pdk[a] + self._pw[a]:
                        self._known |= bit
                        outcome = "wrong_value"
                    else:
                        self._known |= bit
                        self._revealed |= bit
                        outcome = "answered"
        self._rounds += interaction_rounds
        intent_gain = 0.0 if leaves else float(h_before - self._Hrow[self._revealed])
        accuracy = float(self._acc_row[self._revealed]) if handover else 0.0
        # MACDF Eq. 3: R(s, a) = alpha * Intent_Gain - beta * Interaction_Rounds,
        # plus the hand-over term w_T * Accuracy@5 and the abandonment penalty.
        reward = (
            prm.alpha * intent_gain
            - prm.beta * interaction_rounds
            + prm.w_T * accuracy
            - prm.abandon_penalty * float(leaves)
        )
        truncated = not terminated and self._rounds >= prm.max_rounds
        info = {
            "intent_gain": intent_gain,
            "rounds": self._rounds,
            "query_type": QUERY_TYPES[self._qt],
            "action_mask": self.action_masks(),
            "outcome": outcome,
        }
        if terminated:
            info["accuracy_at_5"] = accuracy
        elif truncated:
            info["accuracy_at_5"] = float(self._acc_row[self._revealed])
        return featurize(self.dialogue_state()), float(reward), terminated, truncated, info

    def render(self) -> str | None:
        """A one-line text view of the dialogue state (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        from rl_shop.policies.features.clarify import mask_to_slots

        return (
            f"[{QUERY_TYPES[self._qt]}] round {self._rounds}/{self.params.max_rounds} "
            f"known={list(mask_to_slots(self._known))} asked={list(mask_to_slots(self._asked))} "
            f"|C|={2 ** float(self._log2c_row[self._revealed]):.0f}"
        )
