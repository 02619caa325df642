"""Brand normalization and inference.

Shoppers say "hp" or "hewlett packard" and exclude brands by name, so the catalog keeps one
canonical lowercase spelling per brand (``configs/catalog/brands.yaml``). Where a source has no
brand, the leading tokens of the title are tried against the brands the sources do name, because
product titles in these sets almost always start with the brand ("sony turntable pslx350h").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_shop.catalog.attributes import normalize_text
from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.errors import CatalogError


@dataclass
class BrandNormalizer:
    """Maps raw brand strings to canonical names and infers brands from titles."""

    alias_to_canonical: dict[str, str]
    legal_suffixes: tuple[str, ...]
    not_brands: frozenset[str]
    infer_min_count: int = 2
    infer_max_tokens: int = 3
    known: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: dict[str, Any] | str | Path = "brands") -> BrandNormalizer:
        """Builds from a parsed mapping, a YAML path or a config name under configs/catalog/."""
        data = config if isinstance(config, dict) else load_yaml(config)
        try:
            aliases: dict[str, str] = {}
            for canonical, variants in data["aliases"].items():
                canonical_norm = normalize_text(str(canonical))
                aliases[canonical_norm] = canonical_norm
                for variant in variants:
                    aliases[normalize_text(str(variant))] = canonical_norm
            return cls(
                alias_to_canonical=aliases,
                legal_suffixes=tuple(normalize_text(str(s)) for s in data["legal_suffixes"]),
                not_brands=frozenset(normalize_text(str(s)) for s in data["not_brands"]),
                infer_min_count=int(data["infer_min_count"]),
                infer_max_tokens=int(data["infer_max_tokens"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogError(
                f"brands config is malformed ({exc!r}); it needs 'aliases' (canonical -> list of variants), "
                "'legal_suffixes', 'not_brands', 'infer_min_count' and 'infer_max_tokens'"
            ) from exc

    def normalize(self, raw: object) -> str:
        """Canonical brand for a raw value ("" for missing or non-brand values)."""
        text = normalize_text(raw)
        if text in self.alias_to_canonical:
            return self.alias_to_canonical[text]
        changed = True
        while changed and text:
            changed = False
            for suffix in self.legal_suffixes:
                if text == suffix:
                    text = ""
                    changed = True
                elif text.endswith(" " + suffix) or (not suffix[0].isalnum() and text.endswith(suffix)):
                    text = text[: -len(suffix)].strip(" ,")
                    changed = True
        text = self.alias_to_canonical.get(text, text)
        return "" if text in self.not_brands else text

    def learn_known(self, explicit_brands: Iterable[str]) -> None:
        """Records brands named often enough by the sources to be trusted for title inference."""
        counts = Counter(b for b in explicit_brands if b)
        known = {b for b, n in counts.items() if n >= self.infer_min_count}
        known |= set(self.alias_to_canonical)
        self.known = frozenset(k for k in known if k not in self.not_brands)

    def infer_from_title(self, title: object) -> str:
        """Canonical brand from the title's first 1..infer_max_tokens tokens, longest first; "" if none."""
        tokens = re.findall(r"[\w&'.+\-]+", normalize_text(title))
        for n in range(min(self.infer_max_tokens, len(tokens)), 0, -1):
            candidate = " ".join(tokens[:n])
            if candidate in self.known:
                return self.alias_to_canonical.get(candidate, candidate)
        return ""
