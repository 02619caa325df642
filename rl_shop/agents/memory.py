"""Memory System Layer of MACDF (section 3.1): the shared store through which agents collaborate.

One SQLite database holds the four kinds of state the paper names (SubAgent Context, Task States,
Agent Outputs, User History), the Planner's task graph (the "graph database" of 3.4, as node and
edge tables) and the reflection knowledge base of the Leader's Long-term Adaptation (3.2).

Why SQLite: it is a real database that survives the process, so a run can be inspected afterwards
(``dump(session_id)``) with nothing but the stdlib, and ``:memory:`` gives tests an isolated store.
One connection is shared under a lock (``check_same_thread=False``), which keeps ``:memory:``
databases coherent and makes the store safe to call from ``asyncio.to_thread`` workers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from, load_agent_config, validate_config
from rl_shop.agents.text import tokens
from rl_shop.agents.types import TaskState
from rl_shop.paths import cache_dir

if TYPE_CHECKING:
    import networkx as nx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subagent_context (
    session_id TEXT NOT NULL, agent TEXT NOT NULL, key TEXT NOT NULL,
    value_json TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (session_id, agent, key));
CREATE TABLE IF NOT EXISTS task_states (
    session_id TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL, finished_at REAL, error TEXT, detail_json TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (session_id, task_id));
CREATE TABLE IF NOT EXISTS agent_outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, agent TEXT NOT NULL,
    task_id TEXT, payload_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS agent_outputs_session ON agent_outputs(session_id, agent);
CREATE TABLE IF NOT EXISTS user_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, session_id TEXT,
    event TEXT NOT NULL, payload_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS user_history_user ON user_history(user_id);
CREATE TABLE IF NOT EXISTS graph_nodes (
    session_id TEXT NOT NULL, version INTEGER NOT NULL, node_id TEXT NOT NULL, attrs_json TEXT NOT NULL,
    PRIMARY KEY (session_id, version, node_id));
CREATE TABLE IF NOT EXISTS graph_edges (
    session_id TEXT NOT NULL, version INTEGER NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
    PRIMARY KEY (session_id, version, src, dst));
CREATE TABLE IF NOT EXISTS reflection_kb (
    id INTEGER PRIMARY KEY AUTOINCREMENT, query_type TEXT NOT NULL, query TEXT NOT NULL,
    reason TEXT NOT NULL, score REAL, remedy TEXT, payload_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS reflection_kb_type ON reflection_kb(query_type);
CREATE TABLE IF NOT EXISTS experiences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, query_type TEXT NOT NULL, satisfaction REAL NOT NULL,
    payload_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS experiences_type ON experiences(query_type);
"""


@defaults_from("memory")
class MemoryConfig(BaseModel):
    """``configs/agents/memory.yaml``: where the database lives and how much history to return."""

    path: str = Field(description="SQLite file; relative paths live under the cache dir")
    user_history_limit: int = Field(ge=1)
    similar_failures_limit: int = Field(ge=1)


class FailureCase(BaseModel):
    """One record of the reflection knowledge base (a plan that scored below the Eq. 2 threshold)."""

    id: int
    query_type: str
    query: str
    reason: str
    score: float | None = None
    remedy: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    similarity: float = 0.0


def _dumps(value: object) -> str:
    try:
        return json.dumps(value, default=_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"memory payloads must be JSON-serializable: {exc}") from None


def _default(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"object of type {type(value).__name__} is not JSON-serializable")


class Memory:
    """The shared Memory System: typed accessors over one SQLite database."""

    def __init__(self, path: str | Path = ":memory:", config: MemoryConfig | None = None) -> None:
        self.config = config or MemoryConfig.model_validate({})  # every default from memory.yaml
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open memory database {self.path!r}: {exc}") from None
        self._lock = threading.RLock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None = None) -> Memory:
        """Open the store named in ``configs/agents/memory.yaml`` (or the given dict)."""
        data = load_agent_config("memory") if cfg is None else cfg
        conf: MemoryConfig = validate_config(MemoryConfig, data, "agents/memory")
        path = conf.path
        if path != ":memory:" and not Path(path).is_absolute():
            path = str(cache_dir() / path)
        return cls(path, conf)

    def close(self) -> None:
        """Close the connection (further calls raise)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._conn.execute(sql, params)
            return cur.fetchall()

    # ---------------------------------------------------------------- SubAgent Context
    def set_context(self, session_id: str, agent: str, key: str, value: object) -> None:
        """Store one piece of an agent's working context for this session (overwrites)."""
        self._execute(
            "INSERT OR REPLACE INTO subagent_context VALUES (?, ?, ?, ?, ?)",
            (session_id, agent, key, _dumps(value), time.time()),
        )

    def get_context(self, session_id: str, agent: str, key: str | None = None, default: object = None) -> object:
        """One context value, or all of an agent's context as a dict when ``key`` is None."""
        if key is None:
            rows = self._execute(
                "SELECT key, value_json FROM subagent_context WHERE session_id=? AND agent=? ORDER BY key",
                (session_id, agent),
            )
            return {k: json.loads(v) for k, v in rows}
        rows = self._execute(
            "SELECT value_json FROM subagent_context WHERE session_id=? AND agent=? AND key=?",
            (session_id, agent, key),
        )
        return json.loads(rows[0][0]) if rows else default

    # ---------------------------------------------------------------- Task States
    def put_task_state(self, state: TaskState) -> None:
        """Insert or update the state of one task."""
        self._execute(
            "INSERT OR REPLACE INTO task_states VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.session_id,
                state.task_id,
                state.status,
                state.started_at,
                state.finished_at,
                state.error,
                _dumps(state.detail),
                time.time(),
            ),
        )

    def get_task_states(self, session_id: str) -> list[TaskState]:
        """All task states of a session, ordered by task id."""
        rows = self._execute(
            "SELECT session_id, task_id, status, started_at, finished_at, error, detail_json "
            "FROM task_states WHERE session_id=? ORDER BY task_id",
            (session_id,),
        )
        return [
            TaskState(
                session_id=r[0],
                task_id=r[1],
                status=r[2],
                started_at=r[3],
                finished_at=r[4],
                error=r[5],
                detail=json.loads(r[6]),
            )
            for r in rows
        ]

    # ---------------------------------------------------------------- Agent Outputs
    def append_output(self, agent: str, session_id: str, payload: object, task_id: str | None = None) -> int:
        """Append one agent output (JSON payload); returns its row id."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO agent_outputs (session_id, agent, task_id, payload_json, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, agent, task_id, _dumps(payload), time.time()),
            )
            return int(cur.lastrowid or 0)  # sqlite sets it after an INSERT

    def outputs(self, session_id: str, agent: str | None = None) -> list[dict[str, Any]]:
        """Outputs of a session in insertion order: ``{agent, task_id, payload}`` dicts."""
        if agent is None:
            rows = self._execute(
                "SELECT agent, task_id, payload_json FROM agent_outputs WHERE session_id=? ORDER BY id",
                (session_id,),
            )
        else:
            rows = self._execute(
                "SELECT agent, task_id, payload_json FROM agent_outputs WHERE session_id=? AND agent=? ORDER BY id",
                (session_id, agent),
            )
        return [{"agent": a, "task_id": t, "payload": json.loads(p)} for a, t, p in rows]

    # ---------------------------------------------------------------- User History
    def add_user_event(self, user_id: str, event: str, payload: object, session_id: str | None = None) -> None:
        """Record a user event (query, click, purchase, answer...) for later personalization."""
        self._execute(
            "INSERT INTO user_history (user_id, session_id, event, payload_json, created_at) VALUES (?, ?, ?, ?, ?)",
            (user_id, session_id, event, _dumps(payload), time.time()),
        )

    def user_history(self, user_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A user's most recent events, oldest first (at most ``limit``, config default)."""
        n = limit or self.config.user_history_limit
        rows = self._execute(
            "SELECT session_id, event, payload_json, created_at FROM user_history WHERE user_id=? "
            "ORDER BY id DESC LIMIT ?",
            (user_id, n),
        )
        return [
            {"session_id": s, "event": e, "payload": json.loads(p), "created_at": c} for s, e, p, c in reversed(rows)
        ]

    # ---------------------------------------------------------------- Planner graph
    def save_graph(self, session_id: str, graph: nx.DiGraph) -> int:
        """Store a task DAG (``networkx.DiGraph``) as a new version for the session; returns the version."""
        with self._lock:
            (current,) = self._conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM graph_nodes WHERE session_id=?", (session_id,)
            ).fetchone()
            version = int(current) + 1
            self._conn.execute("BEGIN")
            try:
                for node, attrs in graph.nodes(data=True):
                    self._conn.execute(
                        "INSERT INTO graph_nodes VALUES (?, ?, ?, ?)",
                        (session_id, version, str(node), _dumps(dict(attrs))),
                    )
                for src, dst in graph.edges():
                    self._conn.execute(
                        "INSERT INTO graph_edges VALUES (?, ?, ?, ?)", (session_id, version, str(src), str(dst))
                    )
                self._conn.execute("COMMIT")
            except Exception:
                self._conn.execute("ROLLBACK")
                raise
        return version

    def load_graph(self, session_id: str, version: int | None = None) -> nx.DiGraph:
        """The stored DAG (latest version unless given) as a ``networkx.DiGraph``."""
        import networkx as nx

        if version is None:
            (version,) = self._execute(
                "SELECT COALESCE(MAX(version), 0) FROM graph_nodes WHERE session_id=?", (session_id,)
            )[0]
        if not version:
            raise KeyError(f"no task graph stored for session {session_id!r}")
        g = nx.DiGraph()
        for node, attrs in self._execute(
            "SELECT node_id, attrs_json FROM graph_nodes WHERE session_id=? AND version=?", (session_id, version)
        ):
            g.add_node(node, **json.loads(attrs))
        for src, dst in self._execute(
            "SELECT src, dst FROM graph_edges WHERE session_id=? AND version=?", (session_id, version)
        ):
            g.add_edge(src, dst)
        return g

    # ---------------------------------------------------------------- reflection knowledge base
    def record_failure(
        self,
        query_type: str,
        query: str,
        reason: str,
        score: float | None = None,
        remedy: str | None = None,
        payload: object = None,
    ) -> int:
        """Record a failure case for Long-term Adaptation; ``remedy`` names a plan fix
        the Planner understands (``add_web_search``, ``add_product_rewrite``...)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO reflection_kb (query_type, query, reason, score, remedy, payload_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (query_type, query, reason, score, remedy, _dumps(payload or {}), time.time()),
            )
            return int(cur.lastrowid or 0)  # sqlite sets it after an INSERT

    def similar_failures(self, query_type: str, query: str = "", limit: int | None = None) -> list[FailureCase]:
        """Failure cases of this query type, most similar to ``query`` first (token Jaccard), then newest."""
        rows = self._execute(
            "SELECT id, query_type, query, reason, score, remedy, payload_json FROM reflection_kb "
            "WHERE query_type=? ORDER BY id DESC",
            (query_type,),
        )
        q = set(tokens(query))
        cases = []
        for r in rows:
            other = set(tokens(r[2]))
            sim = len(q & other) / len(q | other) if (q or other) else 0.0
            cases.append(
                FailureCase(
                    id=r[0],
                    query_type=r[1],
                    query=r[2],
                    reason=r[3],
                    score=r[4],
                    remedy=r[5],
                    payload=json.loads(r[6]),
                    similarity=sim,
                )
            )
        cases.sort(key=lambda c: (-c.similarity, -c.id))
        return cases[: (limit or self.config.similar_failures_limit)]

    # ---------------------------------------------------------------- Decider experience samples
    def record_experience(self, query_type: str, payload: object, satisfaction: float) -> int:
        """Store a successful decision as an experience sample (the Decider's "model update and memory")."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO experiences (query_type, satisfaction, payload_json, created_at) VALUES (?, ?, ?, ?)",
                (query_type, float(satisfaction), _dumps(payload), time.time()),
            )
            return int(cur.lastrowid or 0)  # sqlite sets it after an INSERT

    def experiences(self, query_type: str, min_satisfaction: float = 0.0, limit: int = 100) -> list[dict[str, Any]]:
        """Experience samples of a query type, newest first."""
        rows = self._execute(
            "SELECT satisfaction, payload_json FROM experiences WHERE query_type=? AND satisfaction>=? "
            "ORDER BY id DESC LIMIT ?",
            (query_type, min_satisfaction, limit),
        )
        return [{"satisfaction": s, "payload": json.loads(p)} for s, p in rows]

    # ---------------------------------------------------------------- inspection
    def sessions(self) -> list[str]:
        """All session ids that have any task state, output, context or graph."""
        rows = self._execute(
            "SELECT session_id FROM task_states UNION SELECT session_id FROM agent_outputs "
            "UNION SELECT session_id FROM subagent_context UNION SELECT session_id FROM graph_nodes"
        )
        return sorted(r[0] for r in rows)

    def dump(self, session_id: str) -> dict[str, Any]:
        """Everything stored for one session, as plain JSON-ready data (for inspection after a run)."""
        contexts: dict[str, dict[str, Any]] = {}
        for agent, key, value in self._execute(
            "SELECT agent, key, value_json FROM subagent_context WHERE session_id=? ORDER BY agent, key", (session_id,)
        ):
            contexts.setdefault(agent, {})[key] = json.loads(value)
        graph: dict[str, Any] = {}
        try:
            g = self.load_graph(session_id)
            graph = {"nodes": {n: a for n, a in g.nodes(data=True)}, "edges": [list(e) for e in g.edges()]}
        except KeyError:
            pass
        return {
            "session_id": session_id,
            "subagent_context": contexts,
            "task_states": [s.model_dump() for s in self.get_task_states(session_id)],
            "agent_outputs": self.outputs(session_id),
            "graph": graph,
        }

    def iter_failures(self) -> Iterator[FailureCase]:
        """All reflection-knowledge-base records, oldest first."""
        for r in self._execute(
            "SELECT id, query_type, query, reason, score, remedy, payload_json FROM reflection_kb ORDER BY id"
        ):
            yield FailureCase(
                id=r[0], query_type=r[1], query=r[2], reason=r[3], score=r[4], remedy=r[5], payload=json.loads(r[6])
            )
