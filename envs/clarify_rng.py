"""Counter-based random numbers shared by the single and the batched clarification env.

Why not ``np.random.Generator``: the batched env steps thousands of shoppers with one numpy call,
and it must agree draw for draw with the single env on the same seeds. A generator per shopper
would force a Python loop. Instead every random number is a pure function of
``(key, episode, step)`` through the SplitMix64 finalizer, computed with Python integers in the
single env and with wrapping ``uint64`` arrays in the batched one; the two give identical bits.

Draw layout per episode (``ekey = episode_key(key, episode)``, ``z = bits(ekey, t)``):

* step ``t = 0``: ``unit53(z)`` picks the pool intent of the episode;
* step ``t >= 1``: the high 32 bits give the shopper's answer draw, the low 32 bits the slot she
  volunteers after rejecting a suggestion. Both exist at every step whether used or not (the
  batched env computes them all, the single env only those it needs), so the stream never
  depends on the actions taken.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT53 = 2.0**-53
_TO_UNIT32 = 2.0**-32
_LOW32 = 0xFFFFFFFF


def mix(z: int) -> int:
    """SplitMix64 finalizer on a Python int (taken modulo 2**64)."""
    z = (z + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def episode_key(key: int, episode: int) -> int:
    """The per-episode stream key of a sub-env key and an episode counter."""
    return mix(mix(key & MASK64) ^ (episode & MASK64))


def bits(ekey: int, step: int) -> int:
    """64 random bits for (episode key, step): ``mix(ekey ^ step)``, inlined (a hot path)."""
    z = ((ekey ^ step) + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def episode_start(mixed_key: int, episode: int) -> tuple[int, float]:
    """``(episode_key(key, episode), unit53(bits(ekey, 0)))`` from ``mixed_key = mix(key)``.

    The two draws of a reset in one call with the mixes inlined; the single env caches
    ``mix(key)`` per seed, so a reset costs two finalizer rounds instead of three.
    """
    z = ((mixed_key ^ (episode & MASK64)) + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    ekey = z ^ (z >> 31)
    z = (ekey + _GOLDEN) & MASK64  # bits(ekey, 0) = mix(ekey ^ 0)
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return ekey, ((z ^ (z >> 31)) >> 11) * _TO_UNIT53


def unit53(z: int) -> float:
    """A uniform float in [0, 1) from the top 53 of 64 random bits."""
    return (z >> 11) * _TO_UNIT53


def answer_draw(z: int) -> float:
    """The shopper's answer draw in [0, 1): the high 32 bits."""
    return (z >> 32) * _TO_UNIT32


def volunteer_draw(z: int) -> float:
    """The volunteered-slot draw in [0, 1): the low 32 bits."""
    return (z & _LOW32) * _TO_UNIT32


def episode_block(
    key: int, first_episode: int, count: int, n_intents: int, n_steps: int
) -> list[tuple[int, int, list[float], list[float]]]:
    """The draws of ``count`` consecutive episodes of one stream, computed with arrays.

    Entry ``j`` is, for episode ``first_episode + j``: ``(ekey, intent, answer, volunteer)`` with
    ``ekey = episode_key(key, episode)``, ``intent = int(unit53(bits(ekey, 0)) * n_intents)``,
    ``answer[t - 1] = answer_draw(bits(ekey, t))`` and ``volunteer[t - 1] =
    volunteer_draw(bits(ekey, t))`` for ``t = 1 .. n_steps``. The same bits as the scalar
    functions (wrapping uint64 arithmetic, exact float scaling), at a fraction of their cost per
    episode: the single env draws its episodes in blocks with this.
    """
    episodes = np.arange(count, dtype=np.uint64) + np.uint64(first_episode & MASK64)
    ekeys = episode_key_array(np.full(count, key & MASK64, dtype=np.uint64), episodes)
    intents = (unit53_array(mix_array(ekeys)) * n_intents).astype(np.int64)
    steps = np.arange(1, n_steps + 1, dtype=np.uint64)
    z = mix_array(ekeys[:, None] ^ steps[None, :])
    return list(
        zip(
            ekeys.tolist(),
            intents.tolist(),
            answer_draw_array(z).tolist(),
            volunteer_draw_array(z).tolist(),
        )
    )


_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U11 = np.uint64(11)
_U32 = np.uint64(32)
_ULOW32 = np.uint64(_LOW32)
_UGOLDEN = np.uint64(_GOLDEN)
_UM1 = np.uint64(_M1)
_UM2 = np.uint64(_M2)


def mix_array(z: np.ndarray) -> np.ndarray:
    """``mix`` over a ``uint64`` array (numpy array arithmetic wraps modulo 2**64)."""
    z = z + _UGOLDEN
    z ^= z >> _U30
    z *= _UM1
    z ^= z >> _U27
    z *= _UM2
    z ^= z >> _U31
    return z


def episode_key_array(keys: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """``episode_key`` over arrays of keys and episode counters."""
    return mix_array(mix_array(keys.astype(np.uint64)) ^ episodes.astype(np.uint64))


def bits_array(ekeys: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``bits`` over arrays of episode keys and (uint64) steps."""
    return mix_array(ekeys ^ steps.astype(np.uint64, copy=False))


def unit53_array(z: np.ndarray) -> np.ndarray:
    """``unit53`` over a ``uint64`` array."""
    return (z >> _U11).astype(np.float64) * _TO_UNIT53


def answer_draw_array(z: np.ndarray) -> np.ndarray:
    """``answer_draw`` over a ``uint64`` array."""
    return (z >> _U32).astype(np.float64) * _TO_UNIT32


def volunteer_draw_array(z: np.ndarray) -> np.ndarray:
    """``volunteer_draw`` over a ``uint64`` array."""
    return (z & _ULOW32).astype(np.float64) * _TO_UNIT32
