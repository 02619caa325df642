"""Closed vocabularies for product attributes, shared by the catalog, the simulator and the agents.

Why closed: the simulator samples required attributes from these lists and the agents parse the
shopper's words back into them, so both sides must agree on one spelling per value. Each canonical
value maps to the surface phrases (regex fragments, lowercase) that express it in real titles.
The order of the tuples is part of the contract (it is used as a one-hot layout by featurizers).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# canonical colour -> phrases that name it (word-bounded when matched)
_COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "black": ("black", "jet black", "matte black", "onyx"),
    "white": ("white", "ivory", "pearl white", "snow white"),
    "silver": ("silver", "chrome", "metallic silver"),
    "gray": ("gray", "grey", "graphite", "gunmetal", "space gray", "space grey"),
    "red": ("red", "maroon", "burgundy", "crimson", "scarlet"),
    "blue": ("blue", "navy", "navy blue", "royal blue", "sky blue", "teal", "turquoise", "aqua", "cyan"),
    "green": ("green", "olive", "lime green"),
    "yellow": ("yellow", "mustard"),
    "orange": ("orange", "coral", "peach"),
    "pink": ("pink", "magenta", "fuchsia", "hot pink", "rose"),
    "purple": ("purple", "violet", "lavender", "lilac"),
    "brown": ("brown", "tan", "chocolate", "walnut", "mahogany", "cherry wood"),
    "beige": ("beige", "cream", "khaki", "off white", "off-white"),
    "gold": ("gold", "golden", "champagne", "rose gold"),
    "clear": ("transparent", "translucent", "clear case", "crystal clear"),
    "multicolor": (
        "multicolor",
        "multicolour",
        "multi-color",
        "multi color",
        "multi-colour",
        "tri-color",
        "tricolor",
        "tri-colour",
        "assorted colors",
    ),
}

_CONNECTIVITY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "bluetooth": ("bluetooth", "bt 4.0", "bt 5.0"),
    "wifi": (
        "wifi",
        "wi-fi",
        "802.11[a-z/]*",
        "wireless lan",
        "wlan",
        "wireless-n",
        "wireless n router",
        "wireless g",
        "wireless-g",
    ),
    "usb": (r"usb(?![- ]?c\b|[- ]type[- ]?c)",),
    "usb-c": ("usb-c", "usb c", "usb type-c", "usb type c", "type-c", "type c"),
    "hdmi": ("hdmi",),
    "ethernet": ("ethernet", "rj45", "rj-45", "10/100", "10/100/1000", "gigabit lan", "lan port", "cat5e?", "cat6"),
    "wired": ("wired", "corded"),
    "wireless-2.4ghz": ("2.4ghz", "2.4 ghz", "2.4g wireless", "2.4 g wireless"),
    "nfc": ("nfc",),
    "lightning": (
        "lightning connector",
        "lightning cable",
        "lightning adapter",
        "lightning port",
        "lightning dock",
        "to lightning",
        "lightning to",
        "8-pin lightning",
    ),
    "3.5mm": ("3.5mm", "3.5 mm", "3.5-mm", "1/8 inch", "aux", "auxiliary"),
    "firewire": ("firewire", "ieee 1394", "ieee-1394", "i.link"),
    "vga": ("vga", "d-sub", "hd-15", "hd15"),
    "dvi": ("dvi", "dvi-d", "dvi-i"),
    "displayport": ("displayport", "display port", "mini displayport"),
    "thunderbolt": ("thunderbolt",),
    "optical-audio": ("toslink", "optical audio", "spdif", "s/pdif"),
    "serial": ("serial port", "serial cable", "serial adapter", "rs-232", "rs232", "db9", "db-9"),
}

_FEATURE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "wireless": ("wireless", "cordless", "cable-free"),
    "noise cancelling": (
        "noise cancelling",
        "noise canceling",
        "noise-cancelling",
        "noise-canceling",
        "noise cancellation",
        "anc",
        "noise reduction",
        "noise isolating",
        "noise-isolating",
    ),
    "waterproof": ("waterproof", "water proof", "water-proof", "submersible", "underwater", "ipx7", "ipx8", "ip68"),
    "water resistant": (
        "water resistant",
        "water-resistant",
        "splash proof",
        "splash-proof",
        "weatherproof",
        "weather-proof",
        "weather resistant",
        "weather-resistant",
        "all-weather",
        "ipx4",
        "ipx5",
    ),
    "rechargeable": ("rechargeable", "recharge"),
    "portable": ("portable", "travel", "pocket"),
    "ergonomic": ("ergonomic", "ergo"),
    "backlit": ("backlit", "backlight", "back-lit", "illuminated"),
    "foldable": ("foldable", "folding", "collapsible", "fold-up"),
    "stereo": ("stereo",),
    "hd": (r"hd(?![- ]?15)", "high definition", "high-definition", "hdtv", "hd-ready"),
    "4k": ("4k", "uhd", "ultra hd", "2160p"),
    "1080p": ("1080p", "full hd", "full-hd", "1080i"),
    "720p": ("720p",),
    "touchscreen": ("touchscreen", "touch screen", "touch-screen", "touch pad", "touchpad"),
    "gaming": ("gaming", "gamer"),
    "compact": ("compact",),
    "heavy duty": ("heavy duty", "heavy-duty", "rugged", "industrial"),
    "slim": ("slim", "ultra-thin", "ultrathin", "ultra thin", "thin"),
    "lightweight": ("lightweight", "light-weight", "ultralight", "ultra-light"),
    "shockproof": (
        "shockproof",
        "shock proof",
        "shock-proof",
        "shock resistant",
        "shock-resistant",
        "drop proof",
        "impact resistant",
    ),
    "adjustable": ("adjustable", "height-adjustable", "tilt", "swivel"),
    "hands-free": ("hands-free", "handsfree", "hands free", "speakerphone"),
    "surround sound": ("surround", r"[57]\.1[- ]?(?:ch|channel)", "dolby digital", "dts"),
    "optical": ("optical",),
    "laser": ("laser",),
    "color": ("colour", "color printer", "color laser", "color inkjet", "full color", "full-color"),
    "duplex": ("duplex", "two-sided", "double-sided", "2-sided"),
    "all-in-one": ("all-in-one", "all in one", "aio", "multifunction", "multi-function", "mfp"),
    "3d": ("3d", "3-d"),
    "smart": ("smart",),
    "retractable": ("retractable",),
    "magnetic": ("magnetic", "magnet"),
    "universal": ("universal",),
    "leather": ("leather", "leatherette"),
    "high capacity": ("high capacity", "high-capacity", "high yield", "high-yield"),
    "energy efficient": ("energy star", "energy efficient", "energy-efficient", "low power", "eco"),
}

COLOURS: tuple[str, ...] = tuple(_COLOUR_SYNONYMS)
CONNECTIVITY: tuple[str, ...] = tuple(_CONNECTIVITY_SYNONYMS)
FEATURES: tuple[str, ...] = tuple(_FEATURE_SYNONYMS)

COLOUR_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(_COLOUR_SYNONYMS)
CONNECTIVITY_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(_CONNECTIVITY_SYNONYMS)
FEATURE_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(_FEATURE_SYNONYMS)
