"""Reuse of the key/value cache of a shared prompt prefix (the agents' long system prompts).

Every agent turn re-sends the same system prompt; recomputing its attention keys and values each
time dominates time-to-first-token on a CPU. This keeps the ``DynamicCache`` of recently seen
prefixes and hands ``generate`` a copy (``past_key_values``), so only the new suffix is prefilled.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import torch


class PrefixKVCache:
    """LRU map from a prefix's token ids to its KV cache."""

    def __init__(self, model: Any, max_entries: int = 4, min_tokens: int = 16) -> None:
        if max_entries < 0 or min_tokens < 1:
            raise ValueError("prefix cache needs max_entries >= 0 and min_tokens >= 1")
        self.model = model
        self.max_entries = max_entries
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def past_for(self, input_ids: torch.Tensor, prefix_len: int) -> Any | None:
        """A private copy of the KV cache for ``input_ids[0, :prefix_len]``, computing it on a miss.

        Returns None when reuse does not apply (disabled, prefix too short, or nothing left after
        the prefix for ``generate`` to prefill).
        """
        total = int(input_ids.shape[1])
        if not self.enabled or prefix_len < self.min_tokens or prefix_len >= total:
            return None
        key = tuple(int(t) for t in input_ids[0, :prefix_len].tolist())
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            with torch.no_grad():
                out = self.model(input_ids=input_ids[:, :prefix_len], use_cache=True)
            entry = out.past_key_values
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self.hits += 1
            self._entries.move_to_end(key)
        return copy.deepcopy(entry)

    def clear(self) -> None:
        """Forget every cached prefix."""
        self._entries.clear()
