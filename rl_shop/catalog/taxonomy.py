"""Placing raw source categories into one small department tree.

The Amazon table has ~700 raw category strings and Flipkart has deep trees polluted with brand and
product names; the simulator samples intents per category and the agents filter by department, so
both need one clean tree. The mapping is data (``configs/catalog/taxonomy.yaml``), this module only
applies it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_shop.catalog.attributes import normalize_text
from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.errors import CatalogError

PATH_SEP = " > "


def _clean_name(text: str) -> str:
    """ "kitchen  dining" -> "kitchen dining"; keeps letters, digits, '&', '-' and spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w&\- ]", " ", normalize_text(text))).strip()


@dataclass(frozen=True)
class _Group:
    path: str
    categories: frozenset[str]
    keywords: tuple[re.Pattern[str], ...]

    @property
    def leaf(self) -> str:
        return self.path.split(PATH_SEP)[-1]


@dataclass
class Taxonomy:
    """The department tree and the rules that place raw categories into it."""

    groups: list[_Group]
    fallback_path: str
    flipkart_departments: dict[str, str]
    flipkart_title_keywords: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any] | str | Path = "taxonomy") -> Taxonomy:
        """Builds from a parsed mapping, a YAML path or a config name under configs/catalog/."""
        data = config if isinstance(config, dict) else load_yaml(config)
        try:
            groups = [
                _Group(
                    path=str(g["path"]),
                    categories=frozenset(_clean_name(c) for c in g.get("categories", [])),
                    keywords=tuple(re.compile(r"\b" + re.escape(k.lower())) for k in g.get("keywords", [])),
                )
                for g in data["groups"]
            ]
            return cls(
                groups=groups,
                fallback_path=str(data["fallback_path"]),
                flipkart_departments={_clean_name(k): str(v) for k, v in data["flipkart_departments"].items()},
                flipkart_title_keywords={str(k): list(v) for k, v in data.get("flipkart_title_keywords", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise CatalogError(
                f"taxonomy config is malformed ({exc!r}); it needs 'groups' (each with 'path', optional "
                "'categories' and 'keywords'), 'fallback_path' and 'flipkart_departments'"
            ) from exc

    def _group_for(self, text: str) -> _Group | None:
        for group in self.groups:
            if text in group.categories:
                return group
        for group in self.groups:
            if any(k.search(text) for k in group.keywords):
                return group
        return None

    def place(self, raw_category: object, title: str = "") -> tuple[str, str]:
        """(leaf category, category_path) for a raw leaf category, or for the title if it is missing."""
        raw = _clean_name(raw_category) if isinstance(raw_category, str) else ""
        if raw:
            group = self._group_for(raw)
            path = group.path if group else self.fallback_path
            if path.split(PATH_SEP)[-1] == raw:
                return raw, path
            return raw, path + PATH_SEP + raw
        group = self._group_for(_clean_name(title))
        path = group.path if group else self.fallback_path
        return path.split(PATH_SEP)[-1], path

    def place_flipkart(self, tree: object, title: str, brand: str) -> tuple[str, str]:
        """Cleans a Flipkart tree: drops levels naming the brand or the product, maps the top level."""
        levels = _parse_tree(tree)
        title_norm = _clean_name(title)
        brand_norm = _clean_name(brand)
        kept: list[str] = []
        for position, level in enumerate(levels):
            name = _clean_name(level)
            if not name or name == title_norm or (brand_norm and name.startswith(brand_norm + " ")):
                break
            if len(name.split()) > 4:  # a product name, not a category
                break
            near_end = position >= len(levels) - 2
            if near_end and kept and name.endswith(" " + kept[-1]):  # "<brand> tops" under "tops"
                break
            kept.append(name)
        department = self.flipkart_departments.get(kept[0]) if kept else None
        if department is None:
            department = self._flipkart_department_from_title(title_norm)
            kept = []
        if department is None:
            return self.place(None, title)
        path_levels = [department]
        if kept and kept[0] != department:
            path_levels.append(kept[0])
        if len(kept) > 1:
            path_levels.append(kept[-1])
        leaf = path_levels[-1]
        return leaf, PATH_SEP.join(path_levels)

    def _flipkart_department_from_title(self, title_norm: str) -> str | None:
        for department, words in self.flipkart_title_keywords.items():
            if any(re.search(r"\b" + re.escape(w), title_norm) for w in words):
                return department
        return None


def _parse_tree(tree: object) -> list[str]:
    """Flipkart stores the tree as a Python list literal, e.g. "['footwear', 'womens footwear']"."""
    if not isinstance(tree, str) or not tree.strip():
        return []
    try:
        parsed = ast.literal_eval(tree)
    except (ValueError, SyntaxError):
        return [part.strip() for part in tree.strip("[]").split(">>") if part.strip()]
    if isinstance(parsed, (list, tuple)):
        return [str(p) for p in parsed]
    return [str(parsed)]
