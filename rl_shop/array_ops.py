"""The few array operations where numpy and torch spell things differently, behind one interface.

The batched kernels (``envs.clarify_kernel``, ``envs.collaborate_kernel``) write each formula
once against an ``ops`` object; ``NUMPY`` runs them on numpy arrays (the Gymnasium vector envs),
``TORCH`` on torch tensors on the CPU or a CUDA device (the TorchRL training path), and ``SCALAR``
runs the shared formulas (``envs.collaborate_formulas``) on the single envs' Python numbers.

Everything else the kernels use (``+ - * / ^ & | << >> ~``, comparisons, ``a[idx]`` gathers) has
the same meaning in both libraries, with one trap that the helpers here exist to avoid: torch
promotes ``python float * int/bool tensor`` to float32, numpy to float64. The kernels convert
explicitly with ``ops.f64`` before mixing integers or booleans with float coefficients.

Random bits use wrapping int64 arithmetic (torch has no ``uint64`` arithmetic): additions,
multiplications and xors wrap identically on two's complement int64, and ``lsr`` is the logical
(unsigned) right shift, so the bits equal those of the ``uint64`` SplitMix64 of ``envs.clarify_rng``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar, cast

import numpy as np

if TYPE_CHECKING:
    import torch
    from numpy.typing import ArrayLike

#: A batch of values in one of the two array libraries (a formula returns the type it was given).
Batch = TypeVar("Batch", np.ndarray, "torch.Tensor")
#: A value of the formulas shared with the single envs: a Python number (``SCALAR``) or a batch.
Num = TypeVar("Num", float, np.ndarray, "torch.Tensor")
#: A truth value of the shared formulas: a Python ``bool`` or a batch of them.
Flag = TypeVar("Flag", bool, np.ndarray, "torch.Tensor")

MASK64 = (1 << 64) - 1


def signed64(value: int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value`` (mod 2**64)."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_T = TypeVar("_T")


class NumpyOps:
    """Array helpers over numpy."""

    name = "numpy"

    @staticmethod
    def f64(x: ArrayLike) -> np.ndarray:
        return np.asarray(x).astype(np.float64)

    @staticmethod
    def i64(x: ArrayLike) -> np.ndarray:
        return np.asarray(x).astype(np.int64)

    @staticmethod
    def where(cond: ArrayLike, a: ArrayLike, b: ArrayLike) -> np.ndarray:
        return np.where(cond, a, b)

    @staticmethod
    def minimum(x: ArrayLike, c: ArrayLike) -> np.ndarray:
        return np.minimum(x, c)

    @staticmethod
    def maximum(x: ArrayLike, c: ArrayLike) -> np.ndarray:
        return np.maximum(x, c)

    @staticmethod
    def clip(x: ArrayLike, lo: float, hi: float) -> np.ndarray:
        return np.clip(x, lo, hi)

    @staticmethod
    def exp(x: ArrayLike) -> np.ndarray:
        return np.exp(x)

    @staticmethod
    def sqrt(x: ArrayLike) -> np.ndarray:
        return np.sqrt(x)

    @staticmethod
    def log(x: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):  # log(0) = -inf is a value of the formulas, not an error
            return np.log(x)

    @staticmethod
    def f32(x: ArrayLike) -> np.ndarray:
        return np.asarray(x).astype(np.float32)

    @staticmethod
    def take(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``table[idx]`` for a 1-D ``table`` (a gather)."""
        return table[idx]

    @staticmethod
    def pick(mat: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``mat[r, idx[r]]`` for every row ``r``."""
        return np.take_along_axis(mat, idx[:, None], axis=1)[:, 0]

    @staticmethod
    def one_hot(idx: np.ndarray, n: int) -> np.ndarray:
        """Bool ``(len(idx), n)``."""
        return idx[:, None] == np.arange(n)

    @staticmethod
    def searchsorted(sorted_seq: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Insertion points with ``side="right"``."""
        return np.searchsorted(sorted_seq, values, side="right")

    @staticmethod
    def stack(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.stack(xs, axis=axis)

    @staticmethod
    def concat(xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def rows(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``table[idx]`` for a 2-D ``table``: whole rows."""
        return table[idx]

    @staticmethod
    def any(x: np.ndarray, axis: int) -> np.ndarray:
        return cast("np.ndarray", x.any(axis=axis))

    @staticmethod
    def sum(x: np.ndarray, axis: int) -> np.ndarray:
        return x.sum(axis=axis)

    @staticmethod
    def lsr(z: np.ndarray, k: int) -> np.ndarray:
        """Logical right shift of int64 bits (through a free ``uint64`` view: one pass)."""
        return (z.view(np.uint64) >> np.uint64(k)).view(np.int64)


class TorchOps:
    """Array helpers over torch tensors (any device)."""

    name = "torch"

    @staticmethod
    def f64(x: torch.Tensor) -> torch.Tensor:
        import torch

        return x.to(torch.float64)

    @staticmethod
    def i64(x: torch.Tensor) -> torch.Tensor:
        import torch

        return x.to(torch.int64)

    @staticmethod
    def where(cond: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
        import torch

        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            # two Python scalars: torch would pick its default float32; numpy keeps float64 / int64
            dt = torch.float64 if isinstance(a, float) or isinstance(b, float) else torch.int64
            a = torch.tensor(a, dtype=dt, device=cond.device)
        return torch.where(cond, a, b)

    @staticmethod
    def f32(x: torch.Tensor) -> torch.Tensor:
        import torch

        return x.to(torch.float32)

    @staticmethod
    def pick(mat: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return mat.gather(1, idx[:, None])[:, 0]

    @staticmethod
    def one_hot(idx: torch.Tensor, n: int) -> torch.Tensor:
        import torch

        return idx[:, None] == torch.arange(n, device=idx.device)

    @staticmethod
    def searchsorted(sorted_seq: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.searchsorted(sorted_seq, values.contiguous(), right=True)

    @staticmethod
    def stack(xs: list[torch.Tensor] | tuple[torch.Tensor, ...], axis: int) -> torch.Tensor:
        import torch

        return torch.stack(xs, dim=axis)

    @staticmethod
    def concat(xs: list[torch.Tensor] | tuple[torch.Tensor, ...], axis: int) -> torch.Tensor:
        import torch

        return torch.cat(xs, dim=axis)

    @staticmethod
    def minimum(x: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
        import torch

        return torch.clamp(x, max=c) if not isinstance(c, torch.Tensor) else torch.minimum(x, c)

    @staticmethod
    def maximum(x: torch.Tensor, c: torch.Tensor | float) -> torch.Tensor:
        import torch

        return torch.clamp(x, min=c) if not isinstance(c, torch.Tensor) else torch.maximum(x, c)

    @staticmethod
    def clip(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        import torch

        return torch.clamp(x, lo, hi)

    @staticmethod
    def exp(x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.exp(x)

    @staticmethod
    def log(x: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.log(x)

    @staticmethod
    def take(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.take(table, idx)  # several times cheaper than advanced indexing on the CPU

    @staticmethod
    def rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return table.index_select(0, idx)

    @staticmethod
    def any(x: torch.Tensor, axis: int) -> torch.Tensor:
        return x.any(dim=axis)

    @staticmethod
    def sum(x: torch.Tensor, axis: int) -> torch.Tensor:
        return x.sum(dim=axis)

    @staticmethod
    def lsr(z: torch.Tensor, k: int) -> torch.Tensor:
        return (z >> k) & ((1 << (64 - k)) - 1)


class ScalarOps:
    """The same helpers over Python scalars: the single envs run the shared formulas with these.
    Builtins are bound directly (no wrapper frame): the single envs call them at every step."""

    name = "scalar"
    i64 = staticmethod(int)
    f64 = staticmethod(float)
    minimum = staticmethod(min)
    maximum = staticmethod(max)
    log = staticmethod(math.log)
    exp = staticmethod(math.exp)
    sqrt = staticmethod(math.sqrt)

    @staticmethod
    def where(cond: object, a: _T, b: _T) -> _T:
        return a if cond else b

    @staticmethod
    def clip(x: float, lo: float, hi: float) -> float:
        return lo if x < lo else (hi if x > hi else x)


NUMPY = NumpyOps()
TORCH = TorchOps()
SCALAR = ScalarOps()

BatchOps: TypeAlias = NumpyOps | TorchOps  # the ``ops`` of the batched kernels
Ops: TypeAlias = NumpyOps | TorchOps | ScalarOps  # the ``ops`` of the formulas shared with the single envs


class FormulaOps(Protocol[Num]):
    """What the formulas shared with the single envs use of ``ops``, over values of type ``Num``:
    ``SCALAR`` is a ``FormulaOps[float]``, ``NUMPY`` one over numpy arrays, ``TORCH`` over tensors."""

    @property
    def name(self) -> str: ...
    def f64(self, x: Num) -> Num: ...
    def i64(self, x: Num) -> Num: ...
    def where(self, cond: Num, a: Num | float, b: Num | float) -> Num: ...
    def minimum(self, x: Num, c: Num | float) -> Num: ...
    def maximum(self, x: Num, c: Num | float) -> Num: ...
    def clip(self, x: Num, lo: float, hi: float) -> Num: ...
    def exp(self, x: Num) -> Num: ...
    def log(self, x: Num) -> Num: ...


class ArrayOps(FormulaOps[Batch], Protocol[Batch]):
    """The ``ops`` of the batched kernels over arrays of type ``Batch``: ``NUMPY`` (numpy arrays) or
    ``TORCH`` (tensors)."""

    def f32(self, x: Batch) -> Batch: ...
    def take(self, table: Batch, idx: Batch) -> Batch: ...
    def pick(self, mat: Batch, idx: Batch) -> Batch: ...
    def one_hot(self, idx: Batch, n: int) -> Batch: ...
    def searchsorted(self, sorted_seq: Batch, values: Batch) -> Batch: ...
    def stack(self, xs: list[Batch] | tuple[Batch, ...], axis: int) -> Batch: ...
    def concat(self, xs: list[Batch] | tuple[Batch, ...], axis: int) -> Batch: ...
    def rows(self, table: Batch, idx: Batch) -> Batch: ...
    def any(self, x: Batch, axis: int) -> Batch: ...
    def sum(self, x: Batch, axis: int) -> Batch: ...
    def lsr(self, z: Batch, k: int) -> Batch: ...


if TYPE_CHECKING:  # the three ops objects are what the protocols say
    _scalar: FormulaOps[float] = SCALAR
    _numpy: ArrayOps[np.ndarray] = NUMPY
    _torch: ArrayOps[torch.Tensor] = TORCH

# ---------------------------------------------------------------- SplitMix64 on int64 bits
_GOLDEN = signed64(0x9E3779B97F4A7C15)
_M1 = signed64(0xBF58476D1CE4E5B9)
_M2 = signed64(0x94D049BB133111EB)
_TO_UNIT53 = 2.0**-53
_TO_UNIT32 = 2.0**-32
_LOW32 = 0xFFFFFFFF


def mix(ops: ArrayOps[Batch], z: Batch) -> Batch:
    """SplitMix64 finalizer over int64 arrays: the bits of ``envs.clarify_rng.mix``."""
    z = z + _GOLDEN
    z = z ^ ops.lsr(z, 30)
    z = z * _M1
    z = z ^ ops.lsr(z, 27)
    z = z * _M2
    return z ^ ops.lsr(z, 31)


def episode_key(ops: ArrayOps[Batch], keys: Batch, episodes: Batch) -> Batch:
    """``clarify_rng.episode_key`` over int64 arrays."""
    return mix(ops, mix(ops, keys) ^ episodes)


def unit53(ops: ArrayOps[Batch], z: Batch) -> Batch:
    return ops.f64(ops.lsr(z, 11)) * _TO_UNIT53


def answer_draw(ops: ArrayOps[Batch], z: Batch) -> Batch:
    return ops.f64(ops.lsr(z, 32)) * _TO_UNIT32


def volunteer_draw(ops: ArrayOps[Batch], z: Batch) -> Batch:
    return ops.f64(z & _LOW32) * _TO_UNIT32
