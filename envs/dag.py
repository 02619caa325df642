"""Planner task graphs (MACDF Sec. 3.4) for the Schedule env (``envs.specs.SCHEDULE``): templates, random DAGs, latencies.

The Planner turns an intent into a DAG ``G = (V, E)`` of atomic tasks (ProductSearch, WebSearch,
ToolCall, Decision). The scheduling env needs many such graphs with realistic shapes, so this
module samples them from per-query-type templates (weights from config) or from a random-DAG
generator, and draws each task's latency from a per-type lognormal.

Every episode consumes exactly one fixed-size block of uniforms (``DagSampler.n_uniforms``); the
sampler is a pure vectorised function of that block. The single env (a batch of one) and the
batched env (a batch of many) therefore build bit-identical episodes from the same uniforms,
which is what lets the batched env agree with the single env step for step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

#: Atomic task types of the Planner (MACDF Sec. 3.4); the index is the task's type code.
TASK_TYPES: tuple[str, ...] = ("product_search", "web_search", "tool_call", "decision")
DECISION = TASK_TYPES.index("decision")
#: Types a random DAG may use for its non-final tasks (the final task is always the Decision).
_RANDOM_BODY_TYPES = np.array([0, 1, 2], dtype=np.int64)
#: Keeps ndtri finite: a uniform of exactly 0 or 1 would give an infinite latency.
_U_EPS = 1e-12


class DagConfigError(ValueError):
    """A DAG template / latency configuration that is malformed; the message says how to fix it."""


@dataclass(frozen=True)
class DagTemplate:
    """One Planner output shape: task types and, per task, the indices of the tasks it depends on."""

    name: str
    weight: float
    types: tuple[int, ...]
    parents: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class RandomDagSpec:
    """A random layered DAG: ``min_tasks..max_tasks`` tasks (Decision included), edge probability."""

    weight: float
    min_tasks: int
    max_tasks: int
    edge_prob: float


@dataclass
class DagBatch:
    """A batch of sampled episodes; padding tasks (index >= n_tasks) have type -1 and no edges."""

    types: np.ndarray  # (B, N) int64, -1 = padding
    parents: np.ndarray  # (B, N, N) bool, parents[b, i, j]: task i depends on task j
    n_tasks: np.ndarray  # (B,) int64
    latency_s: np.ndarray  # (B, N) float64, inf for padding
    template: np.ndarray  # (B,) int64, index into DagSampler.template_names


def _type_code(name: object, where: str) -> int:
    if name not in TASK_TYPES:
        raise DagConfigError(f"{where}: unknown task type {name!r}; use one of {list(TASK_TYPES)} (MACDF Sec. 3.4).")
    return TASK_TYPES.index(name)


def parse_template(name: str, spec: Mapping[str, Any], max_tasks: int) -> DagTemplate:
    """Validate one template from config: ``{weight, tasks: [{type, deps: [earlier indices]}]}``.

    Dependencies must point to *earlier* tasks, which makes every template acyclic by
    construction, and the last task must be the Decision that the Leader returns.
    """
    if not isinstance(spec, Mapping):
        raise DagConfigError(f"DAG template {name!r} must be a mapping with 'weight' and 'tasks'.")
    weight = float(spec.get("weight", 1.0))
    if not np.isfinite(weight) or weight < 0:
        raise DagConfigError(f"DAG template {name!r}: weight must be >= 0, got {weight}.")
    tasks = spec.get("tasks")
    if not tasks:
        raise DagConfigError(f"DAG template {name!r} is empty; give at least one task, ending with a 'decision'.")
    if len(tasks) > max_tasks:
        raise DagConfigError(
            f"DAG template {name!r} has {len(tasks)} tasks but max_tasks={max_tasks}; raise "
            "max_tasks in configs/env/schedule.yaml or shorten the template."
        )
    types: list[int] = []
    parents: list[tuple[int, ...]] = []
    for i, task in enumerate(tasks):
        where = f"DAG template {name!r}, task {i}"
        if not isinstance(task, Mapping) or "type" not in task:
            raise DagConfigError(f"{where}: expected a mapping with 'type' (and optional 'deps').")
        types.append(_type_code(task["type"], where))
        deps = tuple(int(d) for d in task.get("deps", ()) or ())
        for d in deps:
            if not 0 <= d < i:
                raise DagConfigError(
                    f"{where}: dependency {d} must be the index of an earlier task (0..{i - 1}); "
                    "this keeps the graph acyclic."
                )
        parents.append(deps)
    if types[-1] != DECISION:
        raise DagConfigError(f"DAG template {name!r}: the last task must be a 'decision'.")
    return DagTemplate(name, weight, tuple(types), tuple(parents))


@dataclass(frozen=True)
class LatencyModel:
    """Per-type lognormal latency: ``log L ~ Normal(log median_s, sigma)``."""

    mu: np.ndarray  # (4,) log medians
    sigma: np.ndarray  # (4,)

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> LatencyModel:
        """Read ``{type: {median_s, sigma}}`` for every task type."""
        mu = np.zeros(len(TASK_TYPES))
        sigma = np.zeros(len(TASK_TYPES))
        for name in spec:
            _type_code(name, "latency config")
        for k, name in enumerate(TASK_TYPES):
            if name not in spec:
                raise DagConfigError(
                    f"latency config lacks task type {name!r}; give {{median_s, sigma}} for each of {list(TASK_TYPES)}."
                )
            median = float(spec[name]["median_s"])
            sig = float(spec[name].get("sigma", 0.0))
            if not median > 0 or not sig >= 0:
                raise DagConfigError(
                    f"latency of {name!r}: median_s must be > 0 and sigma >= 0, got median_s={median}, sigma={sig}."
                )
            mu[k] = np.log(median)
            sigma[k] = sig
        return cls(mu, sigma)


class DagSampler:
    """Draws Planner DAGs and task latencies from a fixed-size block of uniforms per episode.

    Uniform layout per episode (``N = max_tasks``): ``[0]`` template choice, ``[1]`` random-DAG
    size, ``[2:2+N]`` random-DAG task types, ``[2+N : 2+N+N*N]`` random-DAG edges (row i, col j
    used when j < i), ``[-N:]`` latency noise (through the normal quantile function).
    """

    def __init__(
        self,
        templates: Mapping[str, Mapping[str, Any]],
        latency: Mapping[str, Any],
        max_tasks: int = 8,
        random_dag: Mapping[str, Any] | None = None,
    ) -> None:
        if int(max_tasks) < 1:
            raise DagConfigError(f"max_tasks must be >= 1, got {max_tasks}.")
        self.max_tasks = N = int(max_tasks)
        self.templates = [parse_template(str(k), v, N) for k, v in (templates or {}).items()]
        self.random: RandomDagSpec | None = None
        if random_dag is not None and float(random_dag.get("weight", 0.0)) > 0:
            spec = RandomDagSpec(
                float(random_dag["weight"]),
                int(random_dag.get("min_tasks", 2)),
                int(random_dag.get("max_tasks", N)),
                float(random_dag.get("edge_prob", 0.3)),
            )
            if not 1 <= spec.min_tasks <= spec.max_tasks <= N:
                raise DagConfigError(
                    f"random_dag needs 1 <= min_tasks <= max_tasks <= max_tasks of the env ({N}), "
                    f"got min_tasks={spec.min_tasks}, max_tasks={spec.max_tasks}."
                )
            if not 0.0 <= spec.edge_prob <= 1.0:
                raise DagConfigError(f"random_dag.edge_prob must be in [0, 1], got {spec.edge_prob}.")
            self.random = spec
        weights = [t.weight for t in self.templates] + ([self.random.weight] if self.random else [])
        if not weights or sum(weights) <= 0:
            raise DagConfigError("no DAG to sample: give at least one template (or random_dag) with weight > 0.")
        self.template_names: tuple[str, ...] = tuple(t.name for t in self.templates) + (
            ("random",) if self.random else ()
        )
        self._cum = np.cumsum(np.asarray(weights, dtype=np.float64)) / float(sum(weights))
        self._cum[-1] = 1.0
        self.latency = LatencyModel.from_config(latency)
        # Fixed arrays per template, gathered by index at sampling time.
        T = len(self.templates)
        self._t_types = np.full((max(T, 1), N), -1, dtype=np.int64)
        self._t_parents = np.zeros((max(T, 1), N, N), dtype=bool)
        self._t_n = np.zeros(max(T, 1), dtype=np.int64)
        for k, t in enumerate(self.templates):
            self._t_types[k, : len(t.types)] = t.types
            self._t_n[k] = len(t.types)
            for i, deps in enumerate(t.parents):
                self._t_parents[k, i, list(deps)] = True
        self.n_uniforms = 2 + N + N * N + N

    @property
    def template_parents(self) -> np.ndarray:
        """``(n_templates, N, N)`` bool: ``[k, i, j]`` = task i of template k depends on task j."""
        return self._t_parents

    @property
    def uniform_columns(self) -> np.ndarray | None:
        """The columns of a uniform row that ``sample`` reads, or ``None`` when it reads them all.

        Without random DAGs only the template choice ``[0]`` and the latency noise ``[-N:]``
        are read, and ``sample`` also accepts rows holding just those columns (in this order):
        the batched env stores ~9 instead of ~82 numbers per buffered episode.
        """
        if self.random is not None:
            return None
        N = self.max_tasks
        return np.concatenate([[0], np.arange(self.n_uniforms - N, self.n_uniforms)]).astype(np.int64)

    def sample(self, u: np.ndarray) -> DagBatch:
        """Build a batch of episodes from uniforms of shape ``(B, n_uniforms)`` (deterministic).

        Without random DAGs ``u`` may also hold only the ``uniform_columns``.
        """
        N = self.max_tasks
        choice = np.searchsorted(self._cum, u[:, 0], side="right")
        choice = np.minimum(choice, len(self._cum) - 1)
        n_templates = len(self.templates)
        is_tmpl = choice < n_templates
        idx = np.where(is_tmpl, choice, 0)
        types = self._t_types[idx]  # fancy indexing returns fresh arrays (no copy needed)
        parents = self._t_parents[idx]
        n_tasks = self._t_n[idx]
        if self.random is not None and not is_tmpl.all():
            r = ~is_tmpl
            spec = self.random
            span = spec.max_tasks - spec.min_tasks + 1
            n = spec.min_tasks + np.minimum((u[r, 1] * span).astype(np.int64), span - 1)
            body = _RANDOM_BODY_TYPES[np.minimum((u[r, 2 : 2 + N] * 3).astype(np.int64), 2)]
            pos = np.arange(N)
            valid = pos[None, :] < n[:, None]
            last = pos[None, :] == (n[:, None] - 1)
            rtypes = np.where(last, DECISION, np.where(valid, body, -1))
            edges = u[r, 2 + N : 2 + N + N * N].reshape(-1, N, N) < spec.edge_prob
            lower = np.tril(np.ones((N, N), dtype=bool), k=-1)
            body_valid = valid & ~last
            edges &= lower[None] & body_valid[:, :, None] & body_valid[:, None, :]
            # The Decision depends on every body task that no other task depends on (the sinks).
            has_child = edges.any(axis=1)
            sinks = body_valid & ~has_child
            edges |= last[:, :, None] & sinks[:, None, :]
            types[r] = rtypes
            parents[r] = edges
            n_tasks[r] = n
        z = ndtri(np.clip(u[:, -N:], _U_EPS, 1.0 - _U_EPS))
        safe = np.maximum(types, 0)
        latency = np.exp(self.latency.mu[safe] + self.latency.sigma[safe] * z)
        latency = np.where(types >= 0, latency, np.inf)
        return DagBatch(types, parents, n_tasks, latency, choice.astype(np.int64))


def template_index(sampler: DagSampler, names: Sequence[str]) -> list[int]:
    """Indices of named templates (for tests and reports); unknown names raise with the known list."""
    out = []
    for n in names:
        if n not in sampler.template_names:
            raise DagConfigError(f"unknown DAG template {n!r}; known: {list(sampler.template_names)}.")
        out.append(sampler.template_names.index(n))
    return out


class EpisodeUniforms:
    """Per-episode blocks of uniforms from one generator, drawn ``block_episodes`` episodes at a time.

    Drawing in blocks keeps resets cheap in the batched env (one generator call per sub-env every
    ``block_episodes`` episodes) while the single env, fed from a generator seeded the same way,
    consumes exactly the same numbers in the same order.
    """

    def __init__(self, rng: np.random.Generator, n_uniforms: int, block_episodes: int) -> None:
        if int(block_episodes) < 1:
            raise DagConfigError(f"rng_block_episodes must be >= 1, got {block_episodes}.")
        self.rng = rng
        self.n_uniforms = int(n_uniforms)
        self.block_episodes = int(block_episodes)
        self._block = rng.random((self.block_episodes, self.n_uniforms))
        self._next = 0

    def next(self) -> np.ndarray:
        """The next episode's uniforms, shape ``(n_uniforms,)``."""
        if self._next == self.block_episodes:
            self._block = self.rng.random((self.block_episodes, self.n_uniforms))
            self._next = 0
        row = self._block[self._next]
        self._next += 1
        return row

    def next_block(self) -> np.ndarray:
        """All remaining rows of the current block (then a fresh block starts), ``(k, n_uniforms)``."""
        if self._next == self.block_episodes:
            self._block = self.rng.random((self.block_episodes, self.n_uniforms))
            self._next = 0
        rows = self._block[self._next :]
        self._next = self.block_episodes
        return rows


class BatchedUniforms:
    """The per-episode uniforms of many sub-envs; sub-env ``i`` replays ``EpisodeUniforms``.

    Sub-env ``i`` owns a generator seeded ``seeds[i]`` (as ``gymnasium.utils.seeding.np_random``)
    and its episodes consume that generator's stream in order, ``n_uniforms`` numbers each, exactly
    as the single env's ``EpisodeUniforms`` does: ``Generator.random`` on float64 yields the same
    stream whatever the block shape, so refilling ``k`` episodes at a time gives the same rows.

    ``columns``: the only columns the caller reads (``None``: all); rows then hold just those,
    in order. The buffer keeps the memory of ``block_episodes`` full rows per sub-env, so storing
    fewer columns buys proportionally larger refills, i.e. fewer Python-level generator calls,
    which were a fifth of a batched step.
    """

    def __init__(
        self,
        seeds: Sequence[int | None],
        n_uniforms: int,
        block_episodes: int,
        columns: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        from gymnasium.utils import seeding

        if int(block_episodes) < 1:
            raise DagConfigError(f"rng_block_episodes must be >= 1, got {block_episodes}.")
        D = int(n_uniforms)
        self._cols = None if columns is None else np.asarray(columns, dtype=np.int64)
        C = D if self._cols is None else len(self._cols)
        self.k = max(int(block_episodes), int(block_episodes) * D // max(C, 1))
        self._rngs = [seeding.np_random(s)[0] for s in seeds]
        B = len(self._rngs)
        self._scratch = np.empty((self.k, D))
        self._buf = np.empty((B, self.k, C))
        for i in range(B):
            self._refill(i)
        self._ptr = np.zeros(B, dtype=np.int64)

    def _refill(self, i: int) -> None:
        if self._cols is None:
            self._rngs[i].random(out=self._buf[i])
        else:
            self._rngs[i].random(out=self._scratch)
            np.take(self._scratch, self._cols, axis=1, out=self._buf[i])

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The next episode's row for each sub-env in ``idx`` (distinct indices), ``(len(idx), C)``."""
        ptr = self._ptr
        empty = idx[ptr[idx] == self.k]
        if empty.size:
            for i in empty.tolist():
                self._refill(i)
            ptr[empty] = 0
        p = ptr[idx]
        rows = self._buf[idx, p]
        ptr[idx] = p + 1
        return rows
