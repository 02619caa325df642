"""Attribute extraction on real titles from the shared data, expected values checked by reading them."""

from __future__ import annotations

import math

import pytest

from rl_shop.catalog import COLOURS, CONNECTIVITY, FEATURES, extract_attributes
from rl_shop.catalog.attributes import find_terms, parse_capacity_gb, parse_size_in

NAN = float("nan")

# (real title, expected colour, capacity_gb, size_in, connectivity must include, features must include)
REAL_TITLES = [
    ("kodak black ink cartridge 10b 1163641", "black", NAN, NAN, [], []),
    ("kingston 128mx64 pc2700 compaq evo d320 ktc-d320 1g", "", NAN, NAN, [], []),
    (
        "lacie 1tb firewire 800/firewire 400/usb 2.0 external hard drive 301199u",
        "",
        1000.0,
        NAN,
        ["firewire", "usb"],
        [],
    ),
    ("apple 1tb time capsule wireless hard drive mb277lla", "", 1000.0, NAN, [], ["wireless"]),
    ("toshiba black 9-inch lcd widescreen portable dvd player sdp91s", "black", NAN, 9.0, [], ["portable"]),
    ("lg 50pj350 50-inch 720p plasma hdtv", "", NAN, 50.0, [], ["hd", "720p"]),
    ("plantronics voyager 510 bluetooth headset silver finish 496915", "silver", NAN, NAN, ["bluetooth"], []),
    ("sony mdr-nc22 / blk black noise canceling headphones mdrnc22", "black", NAN, NAN, [], ["noise cancelling"]),
    ("jvc hanc80 folding noise cancelling headphone", "", NAN, NAN, [], ["foldable", "noise cancelling"]),
    (
        "zotac nvidia geforce gt440 512mb ddr5 dvi hdmi displayport pci-express video card zt-40701-10l",
        "",
        0.512,
        NAN,
        ["dvi", "hdmi", "displayport"],
        [],
    ),
    ("humminbird 385ci 3.5-inch waterproof kayak marine gps and chartplotter", "", NAN, 3.5, [], ["waterproof"]),
    ("belkin flip folio stand for apple ipad 2 in purple lightning midnight", "purple", NAN, NAN, [], []),
    ("ematic 10 in 1 premium accessory kit for ipod touch 3rd gen newest model", "", NAN, NAN, [], []),
    ("da-lite perm-wall - projection screen - 110 in 279 cm - 16 9 - high contrast da-mat", "", NAN, 110.0, [], []),
    ("hp 300gb 6g sas 15k 3.5 in nhp dp ent hdd", "", 300.0, 3.5, [], []),
    (
        "kinamax ms-ues2 mini high precision usb 3-button 3d optical scroll wheel mouse with retractable cable black",
        "black",
        NAN,
        NAN,
        ["usb"],
        ["optical", "retractable"],
    ),
    (
        "accell proultra supreme b116c-010b-40 high speed hdmi cable with ethernet 3m",
        "",
        NAN,
        NAN,
        ["hdmi", "ethernet"],
        [],
    ),
    ("12.1 mp digital camera 2.7 in preview screen 5x dig zoom", "", NAN, 2.7, [], []),
]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@pytest.mark.parametrize("title,colour,capacity,size,connectivity,features", REAL_TITLES)
def test_real_titles(title, colour, capacity, size, connectivity, features):
    attrs = extract_attributes(title)
    assert attrs["colour"] == colour
    assert _same(attrs["capacity_gb"], capacity), attrs["capacity_gb"]
    assert _same(attrs["size_in"], size), attrs["size_in"]
    assert set(connectivity) <= set(attrs["connectivity"]), attrs["connectivity"]
    assert set(features) <= set(attrs["features"]), attrs["features"]


def test_lightning_word_alone_is_not_a_connector():
    attrs = extract_attributes("belkin flip folio stand for apple ipad 2 in purple lightning midnight")
    assert "lightning" not in attrs["connectivity"]
    assert "lightning" in extract_attributes("belkin lightning to usb cable")["connectivity"]


def test_specs_take_precedence_for_colour():
    # real Flipkart row: title names no colour, the specification row does
    attrs = extract_attributes("momin libas ak2414 kashibo solid abaya no", "", {"color": "blue", "size": "l"})
    assert attrs["colour"] == "blue"
    assert math.isnan(attrs["size_in"])  # clothing size "l" is not inches


def test_black_and_white_printer_has_no_colour():
    assert extract_attributes("brother black and white laser printer")["colour"] == ""


def test_capacity_units_and_largest_wins():
    assert parse_capacity_gb("wd 1tb usb drive") == 1000.0
    assert parse_capacity_gb("2gb kit ( 2 x 1gb )") == 2.0
    assert parse_capacity_gb("seagate 500gb 16mb cache") == 500.0
    assert math.isnan(parse_capacity_gb("transcend ts32gjf flash drive"))
    assert math.isnan(parse_capacity_gb("gigabit 1000mbps switch"))


def test_size_guards():
    assert parse_size_in('dell 15.6" laptop') == 15.6
    assert parse_size_in("samsung 55 in led tv") == 55.0
    assert math.isnan(parse_size_in("boss bv9993 in-dash dvd receiver"))
    assert math.isnan(parse_size_in("avery labels 8.5 x 11 in"))


def test_vocabularies_are_closed_and_outputs_stay_inside():
    attrs = extract_attributes("sony wireless bluetooth noise cancelling headphones black usb-c rechargeable")
    assert attrs["colour"] in COLOURS
    assert set(attrs["connectivity"]) <= set(CONNECTIVITY)
    assert set(attrs["features"]) <= set(FEATURES)
    assert "usb-c" in attrs["connectivity"] and "usb" not in attrs["connectivity"]


def test_garbage_input():
    attrs = extract_attributes("!!! ??? 12345 ###")
    assert attrs == {
        "colour": "",
        "capacity_gb": attrs["capacity_gb"],
        "size_in": attrs["size_in"],
        "connectivity": [],
        "features": [],
    }
    assert math.isnan(attrs["capacity_gb"]) and math.isnan(attrs["size_in"])
    with pytest.raises(TypeError):
        extract_attributes(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        find_terms("x", "flavours")
