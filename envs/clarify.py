"""``rl_shop/Clarify-v0``: the Guider's clarification dialogue with a simulated shopper (MACDF 3.3).

The env is a table lookup over a precomputed ``IntentPool`` (see ``envs/intent_pool.py``), so it
steps about as fast as CartPole. ``envs/clarify_batched.py`` runs the same dynamics over many
shoppers with numpy and agrees with this class step for step on the same seeds.
"""

from __future__ import annotations

from typing import Any, SupportsInt, cast, overload

import gymnasium as gym
import numpy as np

from envs import clarify_rng as rng
from envs.clarify_params import (  # noqa: F401  (re-exported: the env's public parameter API)
    CONFIG_PATH,
    ClarifyParams,
    entropy_table,
    load_default_kwargs,
    resolve_params,
    resolve_pool,
)
from envs.intent_pool import N_MASKS, IntentPool
from rl_shop.array_ops import SCALAR, Batch, Num
from rl_shop.policies.features.clarify import (  # noqa: F401  (ACTION_NAMES ... MASK_TABLE: re-exported)
    ACTION_NAMES,
    MASK_ROWS,
    MASK_TABLE,
    N_ACTIONS,
    N_FEATURES,
    N_SLOTS,
    STOP,
    SUGGEST,
    DialogueState,
    featurize_fields,
)
from rl_shop.sim.shopper import confirms, volunteer_index  # noqa: F401  (the shopper's model; re-exported for the kernels)
from rl_shop.sim.slots import QUERY_TYPES

POPCOUNT: np.ndarray = np.array([bin(m).count("1") for m in range(N_MASKS)], dtype=np.int64)
# KTH_BIT[mask, k] = the k-th lowest set bit of mask (as a bit value), 0 past the last one.
KTH_BIT: np.ndarray = np.zeros((N_MASKS, N_SLOTS), dtype=np.int64)
for _m in range(N_MASKS):
    _bits = [1 << b for b in range(N_SLOTS) if (_m >> b) & 1]
    KTH_BIT[_m, : len(_bits)] = _bits
KTH_BIT.setflags(write=False)
_POPCOUNT_LIST: list[int] = POPCOUNT.tolist()
# Block sizes of the single env's episode draws (rng.episode_block): 8, 32, 128, 256, 256, ...
_FIRST_BLOCK = 8
_MAX_BLOCK = 256
_NO_DRAWS: list[float] = []
_KTH_BIT_LIST: list[list[int]] = KTH_BIT.tolist()


def out_of_patience(rounds: Num, patience: Num) -> Num:
    """The shopper leaves instead of answering once the rounds reach her patience."""
    return rounds >= patience


def answer_thresholds(u: Num, p_dont_know: Num, p_wrong: Num) -> tuple[Num, Num]:
    """``(don't know, don't know or a wrong value)`` for the answer draw ``u`` of an asked slot;
    neither: the true value."""
    return u < p_dont_know, u < p_dont_know + p_wrong


@overload
def truncates(terminated: bool, rounds: int, max_rounds: int) -> bool: ...
@overload
def truncates(terminated: Batch, rounds: Batch, max_rounds: int) -> Batch: ...
def truncates(terminated: Num, rounds: Num, max_rounds: int) -> Num:
    """The dialogue is cut at ``max_rounds`` rounds unless it ended."""
    return (terminated == 0) & (rounds >= max_rounds)


def guider_reward(
    alpha: float,
    beta: float,
    w_T: float,
    abandon_penalty: float,
    intent_gain: Num,
    interaction_rounds: Num,
    accuracy: Num,
    leaves: Num,
) -> Num:
    """MACDF Eq. 3, ``R(s, a) = alpha * Intent_Gain - beta * Interaction_Rounds``, plus the hand-over
    term ``w_T * Accuracy@5`` and the abandonment penalty; on floats or float64 arrays (the kernels)."""
    return alpha * intent_gain - beta * interaction_rounds + w_T * accuracy - abandon_penalty * leaves


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
        **kwargs: object,
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
        # Per-intent scalars as Python lists (episodes are ~3 steps, so resets are ~30% of all
        # calls), shared with every other env on the pool: read only.
        rows = self.pool.rows
        self._rel_list = rows.relevant
        self._stated_list = rows.stated
        self._patience_list = rows.patience
        self._qt_list = rows.query_type
        self._pdk_list = rows.p_dont_know
        self._pw_list = rows.p_wrong
        self._make_views()
        self._first_obs: list[bytes | None] = [None] * self._n
        prm = self.params
        self._coef = (prm.alpha, prm.beta, prm.w_T, prm.abandon_penalty, prm.confirm_threshold)
        self._key: int | None = None
        self._mkey = 0  # rng.mix(key): the constant first half of rng.episode_key
        # Episodes 1, 2, ... of a stream come from rng.episode_block, popped from _pending;
        # _answer_u[t - 1] / _volunteer_u[t - 1] are the episode's draws of step t (empty: compute).
        self._pending: list[tuple[int, int, list[float], list[float]]] = []
        self._block_size = _FIRST_BLOCK
        self._answer_u: list[float] = _NO_DRAWS
        self._volunteer_u: list[float] = _NO_DRAWS
        self._episode = 0
        self._ekey = 0
        self._reset_state(0)

    def _make_views(self) -> None:
        """Flat ``[N * 512]`` tables as memoryviews: indexing one gives a Python float ~3x faster
        than a numpy scalar (the same IEEE double, so rewards and observations are unchanged)."""
        # ``ndarray.data`` is the array's memoryview (same as ``memoryview(array)``, which numpy's
        # stubs only accept from Python 3.12 on)
        flat = lambda a: np.ascontiguousarray(a, dtype=np.float64).reshape(-1).data  # noqa: E731
        self._H_mv = flat(self._H)
        self._acc_mv = flat(self.pool.accuracy)
        self._log2c_mv = flat(self.pool.log2_candidates)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle / deepcopy support: memoryviews cannot be pickled, so they are rebuilt."""
        state = self.__dict__.copy()
        for name in ("_H_mv", "_acc_mv", "_log2c_mv"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._make_views()

    # ------------------------------------------------------------------ state
    def _reset_state(self, intent: int) -> None:
        self._i = intent
        self._rel = self._rel_list[intent]
        self._stated = self._revealed = self._known = self._stated_list[intent]
        self._nopref = 0
        self._dontknow = 0
        self._asked = 0
        self._rounds = 0
        self._t = 0
        self._patience = self._patience_list[intent]
        self._pdk = self._pdk_list[intent]  # shared rows: read only
        self._pw = self._pw_list[intent]
        # Entry (intent, m) of a [N, 512] table is flat index base + m (m < 512, so base | m).
        self._base = intent * N_MASKS
        self._qt = self._qt_list[intent]
        self._qt_name = QUERY_TYPES[self._qt]

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
            self._log2c_mv[self._base | self._revealed],
            self._log2n,
        )

    def _answer_draw(self, t: int) -> float:
        """The shopper's answer draw of step ``t`` (precomputed in the episode's block if any)."""
        try:
            return self._answer_u[t - 1]
        except IndexError:  # no block draws (episode 0, or past max_rounds)
            return rng.answer_draw(rng.bits(self._ekey, t))

    def action_masks(self) -> np.ndarray:
        """Valid actions (bool[11]) for MaskablePPO: no re-asking a known or asked slot."""
        return MASK_ROWS[self._known | self._asked].copy()

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a dialogue; ``reset(seed=s)`` then plain ``reset()`` calls replay exactly."""
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = int(seed) & rng.MASK64 if seed is not None else int(self.np_random.integers(0, 2**63))
            self._mkey = rng.mix(self._key)
            self._episode = 0
            self._pending = []
            self._block_size = _FIRST_BLOCK
        else:
            self._episode += 1
        if self._episode == 0:
            # The first episode of a stream: scalar draws (a caller that seeds every reset never
            # pays for a block); its step draws are computed when used.
            self._ekey, u_intent = rng.episode_start(self._mkey, 0)
            intent = int(u_intent * self._n)
            self._answer_u = self._volunteer_u = _NO_DRAWS
        else:
            if not self._pending:
                # Draw the next block of episodes at once (same bits as one by one, see
                # rng.episode_block), growing blocks so that short runs stay cheap.
                self._pending = rng.episode_block(
                    self._key, self._episode, self._block_size, self._n, self._max_rounds
                )[::-1]
                self._block_size = min(4 * self._block_size, _MAX_BLOCK)
            self._ekey, intent, self._answer_u, self._volunteer_u = self._pending.pop()
        self._reset_state(intent)
        info = {
            "intent_gain": 0.0,
            "rounds": 0,
            "query_type": self._qt_name,
            "action_mask": MASK_ROWS[self._known].copy(),
            "intent_index": intent,
        }
        # The first observation depends on the intent only: cache its bytes per intent.
        raw = self._first_obs[intent]
        if raw is None:
            raw = self._first_obs[intent] = featurize_fields(
                self._qt,
                self._stated,
                0,
                0,
                0,
                0,
                self._max_rounds,
                self._log2c_mv[self._base | self._stated],
                self._log2n,
            ).tobytes()
        return np.frombuffer(bytearray(raw), np.float32), info

    def step(self, action: SupportsInt) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply one Guider action; see the class docstring for the dynamics and Eq. 3."""
        if self._key is None:
            raise RuntimeError("call reset() before step()")
        a = action if type(action) is int else int(action)
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"action {action!r} is not in 0..{N_ACTIONS - 1} ({', '.join(ACTION_NAMES)})")
        alpha, beta, w_T, abandon_penalty, confirm_threshold = self._coef
        t = self._t + 1
        self._t = t
        # Counter-based draws are pure functions of (episode key, t), so each is computed only
        # where it is used; the batched env computes all of them and gets the same values.
        revealed = self._revealed
        base = self._base
        H = self._H_mv
        h_before = H[base | revealed]
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
            if out_of_patience(self._rounds, self._patience):
                leaves = terminated = True
                outcome = "shopper_left"
            elif a == SUGGEST:
                if confirms(self._acc_mv[base | revealed], confirm_threshold):
                    terminated = handover = True
                    outcome = "confirmed"
                else:
                    hidden = self._rel & ~revealed
                    count = _POPCOUNT_LIST[hidden]
                    if count:
                        try:
                            u_volunteer = self._volunteer_u[t - 1]
                        except IndexError:  # no block draws (episode 0, or past max_rounds)
                            u_volunteer = rng.volunteer_draw(rng.bits(self._ekey, t))
                        bit = _KTH_BIT_LIST[hidden][cast(int, volunteer_index(SCALAR, u_volunteer, count))]
                        self._revealed = revealed = revealed | bit
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
                    elif (answer := answer_thresholds(self._answer_draw(t), self._pdk[a], self._pw[a]))[0]:
                        self._dontknow |= bit
                        outcome = "dont_know"
                    elif answer[1]:
                        self._known |= bit
                        outcome = "wrong_value"
                    else:
                        self._known |= bit
                        self._revealed = revealed = revealed | bit
                        outcome = "answered"
        rounds = self._rounds = self._rounds + interaction_rounds
        intent_gain = 0.0 if leaves else h_before - H[base | revealed]
        accuracy = self._acc_mv[base | revealed] if handover else 0.0
        reward = guider_reward(
            alpha, beta, w_T, abandon_penalty, intent_gain, interaction_rounds, accuracy, float(leaves)
        )
        truncated = truncates(terminated, rounds, self._max_rounds)
        info = {
            "intent_gain": intent_gain,
            "rounds": rounds,
            "query_type": self._qt_name,
            "action_mask": MASK_ROWS[self._known | self._asked].copy(),
            "outcome": outcome,
        }
        if terminated:
            info["accuracy_at_5"] = accuracy
        elif truncated:
            info["accuracy_at_5"] = self._acc_mv[base | revealed]
        obs = featurize_fields(  # = featurize(self.dialogue_state()), without the NamedTuple / checks
            self._qt,
            self._known,
            self._nopref,
            self._dontknow,
            self._asked,
            rounds,
            self._max_rounds,
            self._log2c_mv[base | revealed],
            self._log2n,
        )
        return obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        """A one-line text view of the dialogue state (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        from rl_shop.policies.features.clarify import mask_to_slots

        return (
            f"[{QUERY_TYPES[self._qt]}] round {self._rounds}/{self.params.max_rounds} "
            f"known={list(mask_to_slots(self._known))} asked={list(mask_to_slots(self._asked))} "
            f"|C|={2 ** self._log2c_mv[self._base | self._revealed]:.0f}"
        )
