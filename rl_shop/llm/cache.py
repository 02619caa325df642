"""On-disk response cache so that re-running an evaluation does not re-pay for generation.

A SQLite file (one table, key -> JSON) under ``cache_dir()/llm`` by default. The key hashes
everything that can change the answer: backend, model id, messages, generation parameters
(including the seed) and the output schema. Sampling with temperature > 0 is still cached: the
seed is part of the key, and the same seed must give the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from rl_shop.paths import cache_dir

_SCHEMA_SQL = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def default_cache_path() -> Path:
    """Where the response cache lives unless the config says otherwise."""
    return cache_dir() / "llm" / "responses.sqlite"


def make_key(**parts: object) -> str:
    """A stable SHA-256 over the JSON form of ``parts`` (sorted keys, so dict order is irrelevant)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A tiny key -> JSON store; safe to share between threads of one process."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._conn.execute(_SCHEMA_SQL)
            self._conn.commit()
        except sqlite3.DatabaseError as exc:
            raise OSError(
                f"LLM response cache {self.path} is not a usable SQLite file ({exc}); delete it "
                "or set llm.cache.path to another file, or disable it with llm.cache.enabled=false"
            ) from exc
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None on a miss."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store (or overwrite) a value."""
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, blob))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._conn.execute("DELETE FROM responses")
            self._conn.commit()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
