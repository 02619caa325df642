"""The one config loader: cross-file values (``${cfg:FILE,KEY}``) and YAML-only defaults."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rl_shop.config_files import (
    ConfigFileError,
    ConfigValue,
    config_value,
    defaults_from_yaml,
    read_config,
    yaml_defaults_of,
)
from rl_shop.paths import CONFIG_DIR


def test_a_value_that_must_agree_is_read_from_its_home_file(tmp_path):
    leader = read_config(CONFIG_DIR / "agents/leader.yaml")
    schedule = read_config(CONFIG_DIR / "env/schedule.yaml")
    collaborate = read_config(CONFIG_DIR / "env/collaborate.yaml")
    assert leader["scheduling"]["alpha"] == schedule["kwargs"]["paper_alpha"]
    assert leader["reflection"]["gamma"] == collaborate["kwargs"]["gamma"]
    # a file of one's own can point at the same home
    f = tmp_path / "mine.yaml"
    f.write_text(
        "alpha: ${cfg:env/schedule.yaml,kwargs.paper_alpha}\ngrid: ${cfg:env/schedule.yaml,kwargs.alpha_grid}\n"
    )
    mine = read_config(f)
    assert mine == {"alpha": schedule["kwargs"]["paper_alpha"], "grid": schedule["kwargs"]["alpha_grid"]}


@pytest.mark.parametrize(
    ("name", "key", "message"),
    [("env/schedule.yaml", "kwargs.nope", "has no value at 'kwargs.nope'"), ("env/nope.yaml", "a", "no config file")],
)
def test_a_missing_cross_file_value_is_named(name, key, message):
    with pytest.raises(ConfigFileError, match=message):
        config_value(name, key)


def test_a_broken_cross_file_reference_names_the_file_that_holds_it(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("alpha: ${cfg:env/schedule.yaml,kwargs.nope}\n")
    with pytest.raises(ConfigFileError, match=r"bad\.yaml: an interpolation cannot be resolved"):
        read_config(f)


def test_defaults_come_from_the_yaml_section_and_value_types_are_written_whole(tmp_path, monkeypatch, request):
    import rl_shop.config_files as cf

    # ${cfg:...} reads files under CONFIG_DIR by name, once per process: start and end with an
    # empty cache so this test neither sees nor leaves the real configs' values.
    cf._config_file_once.cache_clear()
    request.addfinalizer(cf._config_file_once.cache_clear)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "schedule.yaml").write_text("kwargs: {time_origin: toy_origin}\n")
    (tmp_path / "toy.yaml").write_text(
        "hydra: {run: {dir: '${now:%Y}'}}\n"  # Hydra's own keys are skipped, not resolved
        "model:\n  n: 3\n  name: ${cfg:env/schedule.yaml,kwargs.time_origin}\n"
        "  inner: {p: 0.25}\n  first: {low: 1, high: 2}\n  second: {low: 5, high: 9}\n  data: ???\n"
    )
    monkeypatch.setattr(cf, "CONFIG_DIR", tmp_path)

    class Span(ConfigValue):
        low: float
        high: float

    class Inner(BaseModel):
        p: float = Field(ge=0)

    @defaults_from_yaml("toy.yaml", "model")
    class Toy(BaseModel):
        n: int
        name: str
        inner: Inner
        first: Span
        second: Span
        data: str  # "???": Hydra's mandatory value stays required

    toy = Toy.model_validate({"data": "x", "inner": {}})
    assert (toy.n, toy.inner.p, toy.first.high, toy.second.low) == (3, 0.25, 2.0, 5.0)
    assert toy.name == "toy_origin"
    assert yaml_defaults_of(Toy) == {"n", "name", "inner", "first", "second"}
    with pytest.raises(ValueError, match="data"):
        Toy.model_validate({})


def test_a_file_is_parsed_once_per_version_and_callers_get_their_own_dicts(tmp_path):
    import os

    import rl_shop.config_files as cf

    f = tmp_path / "env.yaml"
    f.write_text("kwargs: {a: 1, nested: {b: [1, 2]}}\n")
    before = cf._parsed.cache_info().misses
    first = read_config(f)
    first["kwargs"]["nested"]["b"].append(3)  # a caller updating its copy (as env kwargs do)
    second = read_config(f)
    assert second == {"kwargs": {"a": 1, "nested": {"b": [1, 2]}}}
    assert cf._parsed.cache_info().misses == before + 1  # the second read did not parse again
    f.write_text("kwargs: {a: 2, nested: {b: []}}\n")
    stat = f.stat()
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new version even on coarse clocks
    assert read_config(f)["kwargs"] == {"a": 2, "nested": {"b": []}}
