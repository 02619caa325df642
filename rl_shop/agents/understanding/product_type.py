"""Product type: the head noun phrase of a request, matched against what the catalog carries.

The head is read from the request's first noun phrase (request openers removed, the phrase cut
at words such as "with", "that", "for", "under"). The catalog side is data, not a list: the head
nouns of the catalog's own product titles ("... Earbud Headset (Black)" -> "headset", "earbud
headset") and its leaf category names. A head that no title or category names is a product type
the catalog does not carry ("eye cream"); one that titles name gives the categories it lives in.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rl_shop.agents.understanding.config import ProductTypeConfig

_TOKEN = re.compile(r"[a-z][a-z0-9'+&.-]*[a-z0-9+]|[a-z]")
_TITLE_CUT = re.compile(r"\s(?:-|–|with|for|w/|by|in|featuring|includes?|compatible)\s|[,(|:;/\[]")
_IRREGULAR = {
    "mice": "mouse",
    "knives": "knife",
    "shelves": "shelf",
    "leaves": "leaf",
    "feet": "foot",
    "batteries": "battery",
    "accessories": "accessory",
    "men": "man",
    "women": "woman",
    "children": "child",
}
_NO_STRIP = ("ss", "us", "is", "ics", "ous", "sis", "ies")


def singular(word: str) -> str:
    """A simple English singular: batteries -> battery, boxes -> box, headphones -> headphone."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(?:x|ch|sh|ss|zz)es$", word):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def phrase_key(words: Iterable[str]) -> str:
    """Singular, lower-case key of a phrase: only the last word is singularised."""
    ws = [w.lower() for w in words]
    if not ws:
        return ""
    return " ".join(ws[:-1] + [singular(ws[-1])])


def _content(word: str) -> bool:
    return bool(re.search(r"[a-z]", word)) and not re.search(r"\d", word)


@dataclass
class ProductType:
    """The product type read from a request."""

    phrase: str | None
    in_catalog: bool
    categories: list[tuple[str, float]] = field(default_factory=list)  # (catalog category, share) best first
    support: int = 0
    # read from a vague wish ("something to show slides in meeting rooms"): a product type only if
    # the catalog carries it (the reader drops an uncarried one instead of refusing the request)
    vague: bool = False

    @property
    def category(self) -> str | None:
        return self.categories[0][0] if self.categories else None


class ProductTypeIndex:
    """What the catalog carries, by head noun phrase of its titles and by category name."""

    def __init__(self, titles: Iterable[str], categories: Iterable[str], cfg: ProductTypeConfig) -> None:
        self.cfg = cfg
        self.heads: dict[str, Counter[str]] = defaultdict(Counter)
        # words seen in titles of each head noun: "usb" is a modifier of "microphone", "hair" of nothing
        self.head_words: dict[str, set[str]] = defaultdict(set)
        # titles that contain each word: "headness" = share of those where it is the product noun
        self.word_titles: Counter[str] = Counter()
        self.title_bigrams: set[str] = set()  # "phone case", "hdmi cable": compounds the titles use
        self.raw_words: Counter[str] = Counter()  # every title word as written (spelling vocabulary)
        cats = [str(c).strip().lower() for c in categories]
        for title, cat in zip(titles, cats):
            keys, words = self._title_heads(str(title))
            for key in keys:
                self.heads[key][cat] += 1
            uniq = {singular(w) for w in words}
            self.word_titles.update(uniq)
            self.raw_words.update(words)
            self.title_bigrams.update(f"{a} {singular(b)}" for a, b in zip(words, words[1:]))
            if keys:
                self.head_words[keys[0]].update(uniq)
        self.category_names: dict[str, str] = {}
        for cat in sorted(set(cats)):  # sorted: the same ties on every run (set order follows the hash seed)
            words = _TOKEN.findall(cat)
            if words:
                self.category_names.setdefault(phrase_key(words), cat)
                self.head_words[singular(words[-1])].update(singular(w) for w in words)
        self._openers = sorted((o.lower() for o in cfg.openers), key=len, reverse=True)
        self._strong = {b.lower() for b in cfg.strong_boundaries}
        self._weak = {b.lower() for b in cfg.weak_boundaries}
        self._generic = {g.lower() for g in cfg.generic_heads}
        self._indefinite = {g.lower() for g in cfg.indefinite_heads}
        self._example_cues = {g.lower() for g in cfg.example_cues}
        self._not_heads: set[str] = set()
        self._skip_heads = set(self._generic)  # generic words and property words: never a head
        self.head_totals = {key: sum(c.values()) for key, c in self.heads.items()}
        self._names_by_head: dict[str, list[tuple[set[str], str]]] = defaultdict(list)
        for name_key, cat in self.category_names.items():
            words = name_key.split()
            self._names_by_head[words[-1]].append(({singular(w) for w in words}, cat))

    def never_head(self, words: Iterable[str]) -> None:
        """Words that name a property, never a product (colours, units, sizes)."""
        self._not_heads.update(w.lower() for w in words)
        self._skip_heads = self._generic | self._not_heads

    @classmethod
    def from_catalog(cls, catalog: object, cfg: ProductTypeConfig) -> ProductTypeIndex:
        return cls(catalog["title"].astype(str), catalog["category"].astype(str), cfg)  # type: ignore[index]

    @staticmethod
    def _title_heads(title: str) -> tuple[list[str], list[str]]:
        """Keys of a title's product noun (the last one and two content words before the first
        cut) and the title's words."""
        low = title.lower()
        head = _TITLE_CUT.split(" " + low + " ", maxsplit=1)[0]
        words = [w for w in _TOKEN.findall(head) if _content(w)]
        if not words:
            return [], []
        keys = [phrase_key(words[-1:])]
        if len(words) >= 2:
            keys.append(phrase_key(words[-2:]))
        return keys, _TOKEN.findall(low)

    # ------------------------------------------------------------------ requests
    def _segments(self, text: str) -> list[list[str]]:
        """The request's phrases up to the first strong boundary, openers removed."""
        low = " " + re.sub(r"([^\w\s'&+./\"-]|\.(?!\d)|/)", r" \1 ", text.lower()) + " "
        low = re.sub(r"\s+", " ", low)
        changed = True
        while changed:
            changed = False
            for op in self._openers:
                if low.startswith(" " + op + " "):
                    low = low[len(op) + 1 :]
                    changed = True
        segments: list[list[str]] = [[]]
        for tok in low.split():
            if tok in self._strong:
                # "something like a usb hub": after an indefinite pronoun alone, "like" brings the product
                example = tok in self._example_cues and all(w in self._indefinite for seg in segments for w in seg)
                if not example and any(_content(w) for seg in segments for w in seg):
                    break
                segments.append([])
            elif tok in self._weak or not re.search(r"[a-z0-9]", tok):
                segments.append([])
            else:
                segments[-1].append(tok)
        return [seg for seg in segments if any(_content(w) for w in seg)]

    def _score(self, key: str) -> tuple[int, Counter[str]]:
        counts = Counter(self.heads.get(key, Counter()))
        if key in self.category_names:
            counts[self.category_names[key]] += int(self.cfg.category_name_bonus * self.cfg.min_title_support)
        return sum(counts.values()), counts

    def _best_key(self, seg: list[str]) -> tuple[str, int, Counter[str]] | None:
        """The longest tail of ``seg`` (ending at its head) that the catalog names."""
        for n in range(min(self.cfg.max_head_words, len(seg)), 0, -1):
            key = phrase_key(seg[-n:])
            support, counts = self._score(key)
            if support >= self.cfg.min_title_support:
                return key, support, counts
        return None

    def _with_named_categories(self, key: str, counts: Counter[str]) -> Counter[str]:
        """Title counts plus a bonus for categories named by the same head noun, scaled by how
        many of the key's words the name holds ("rca cable" -> "rca cables" more than "usb
        cables"; "computer cable adapters" is no category of computers)."""
        words = [singular(w) for w in key.split()]
        out = Counter(counts)
        bonus = self.cfg.category_name_bonus * self.cfg.min_title_support
        for name_words, cat in self._names_by_head.get(words[-1], []):
            share = sum(1 for w in words if w in name_words) / len(words)
            out[cat] += int(round(bonus * share))
        return out

    def _named_in_text(self, seg: list[str], key: str) -> str | None:
        """The longest catalog category name written in ``seg`` whose head is the key's head
        ("corded telephones" -> corded telephones, not cordless)."""
        head = key.split()[-1]
        words = [singular(w) for w in seg]
        for n in range(min(4, len(words)), 1, -1):
            for i in range(len(words) - n + 1):
                cand = " ".join(words[i : i + n])
                if cand.split()[-1] == head and cand in self.category_names:
                    return self.category_names[cand]
        return None

    def _foreign_compound(self, seg: list[str], skip_words: frozenset[str] | set[str] = frozenset()) -> bool:
        """Two product nouns the catalog never puts together ("computer desk", "spray bottle",
        "smartwatch band"): a compound product type of its own, which the catalog does not carry."""
        if len(seg) < 2:
            return False
        mod, head = singular(seg[-2]), singular(seg[-1])
        if head in self.category_names:
            return False  # the head names a catalog category by itself: "ssd desktop" is a desktop
        if seg[-2] in skip_words or mod in self._not_heads or self.headness(mod) < self.cfg.compound_headness:
            return False  # an adjective, a spec or a property word: "strappy heels", "ssd desktop", "black speaker"
        pair = f"{seg[-2]} {head}"
        return (
            pair not in self.title_bigrams
            and f"{mod} {head}" not in self.title_bigrams
            and phrase_key([mod, head]) not in self.category_names
        )

    def headness(self, word: str) -> float:
        """How much ``word`` behaves as a product noun in the catalog's titles: the share of the
        titles containing it where it is the head, times the log of that count. Colours, specs and
        connectors ("black", "male", "hdmi") score low; "cable", "speaker" high."""
        key = singular(word)
        n_head = self.head_totals.get(key, 0)
        score = n_head / max(self.word_titles.get(key, 0), n_head) * math.log1p(n_head) if n_head else 0.0
        # a word that names a catalog category ("desktops", "laptops") is a product noun outright
        return max(score, 1.0) if key in self.category_names else score

    def read(self, text: str, skip_words: frozenset[str] | set[str] = frozenset()) -> ProductType:
        """The product type of ``text``: its phrase, whether the catalog carries it, its categories
        (``skip_words``: words that are not part of a product noun here, e.g. the brands named).

        The head is the word of the request's first phrases that behaves most like a catalog
        product noun (:meth:`headness`); it then takes the longest run of modifiers before it that
        the catalog's titles also use ("hdmi cable", "rca cable"). A request whose words are no
        catalog product noun keeps the last words of its first phrase as an uncarried type, unless
        the request opens on an indefinite pronoun ("something cool for my son" names no product
        type; with a product noun the reading is marked ``vague``).
        """
        segments = [[w for w in seg if _content(w)] for seg in self._segments(text)]
        # "something cool for my son": a vague wish names a product only if the catalog carries it
        vague = bool(segments) and any(w in self._indefinite for w in segments[0])
        segments = [
            s[: max(i for i, w in enumerate(s) if w not in self._generic) + 1]
            for s in segments
            if any(w not in self._generic for w in s)
        ]
        if not segments:
            return ProductType(None, False)
        # English noun phrases are head-final: the head is the rightmost product noun of the first
        # phrase that has one ("cell phone case" -> case, "hdmi cable male to male" -> cable).
        pick: tuple[int, int] | None = None
        for si, seg in enumerate(segments):
            for wi, w in enumerate(seg):
                if w in skip_words or w in self._skip_heads or singular(w) in self._skip_heads:
                    continue
                if self.headness(w) >= self.cfg.min_headness:
                    pick = (si, wi)
            if pick is not None:
                break

        def uncarried(words: list[str]) -> ProductType:
            return ProductType(" ".join(words[-2:]), False, vague=vague)

        if pick is None:  # no product noun at all: "something cool for my son" names no product type
            return ProductType(None, False) if vague else uncarried(segments[0])
        si, wi = pick
        # The phrase goes on past the head with a word no catalog title has ("manual toothbrush",
        # "usb lunch box"?): that word is the real head, a product the catalog does not carry.
        tail = [w for w in segments[si][wi + 1 :] if w not in self._not_heads and w not in skip_words]
        if tail and self.word_titles.get(singular(tail[-1]), 0) == 0 and singular(tail[-1]) not in self.category_names:
            return uncarried(segments[si])
        seg = segments[si][: wi + 1]
        if self._foreign_compound(seg, skip_words):
            return uncarried(seg)
        hit = self._best_key(seg)
        if hit is None:
            return uncarried(seg)
        key, support, counts = hit
        counts = self._with_named_categories(key, counts)
        total = sum(counts.values())
        cats = [(c, n / total) for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
        named = self._named_in_text(segments[si], key)
        if named is not None:  # the shopper wrote a catalog category's own name for this head
            cats = [(named, 1.0)] + [(c, v) for c, v in cats if c != named][:4]
        carried = support >= self.cfg.min_title_support  # the catalog has products of this kind
        phrase = " ".join(seg[-2:]) if len(key.split()) < 2 else key
        return ProductType(phrase, carried, cats, support, vague=vague)
