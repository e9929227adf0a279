"""The typed field layer (agents/fields.py): text and Python values parse to the same checked values, ranges and
types are judged once, and every error has the one format."""
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

from agents.fields import ConfigError, Field, describe_fields, fields_of, resolve, spec


@dataclass(frozen=True)
class Knobs:
    rate: float = spec(0.5, "a rate", min=0.0, max=1.0, max_exclusive=True)
    count: int = spec(3, "a count", min=1)
    cap: int | None = spec(None, "a cap; none = off", min=1)
    mode: Literal["a", "b"] = spec("a", "a mode")
    flag: bool = spec(False, "a flag")
    widths: tuple[int, ...] = spec((4, 4), "widths")


def test_fields_are_read_from_the_dataclass():
    f = fields_of(Knobs)
    assert list(f) == ["rate", "count", "cap", "mode", "flag", "widths"]
    assert (f["rate"].min, f["rate"].max, f["rate"].max_exclusive, f["rate"].help) == (0.0, 1.0, True, "a rate")
    assert f["cap"].type == int | None and f["count"].default == 3
    rows = {r["name"]: r for r in describe_fields(Knobs)}
    assert rows["rate"] == {"name": "rate", "type": "float", "default": 0.5, "help": "a rate",
                            "allowed": "float in [0, 1)"}
    assert rows["cap"]["allowed"] == "none or int in [1, inf)" and rows["mode"]["allowed"] == "a | b"


@pytest.mark.parametrize("name, text, value", [
    ("rate", "0.25", 0.25), ("count", "1e3", 1000), ("count", "100_000", 100_000), ("cap", "none", None),
    ("cap", "7", 7), ("mode", "b", "b"), ("flag", "yes", True), ("widths", "8,16", (8, 16)),
])
def test_text_and_python_values_agree(name, text, value):
    f = fields_of(Knobs)[name]
    assert f.parse(text) == value
    assert f.check(value) == value


@pytest.mark.parametrize("name, value, message", [
    ("rate", 1.0, "rate=1.0 is out of range; allowed: [0, 1)"),
    ("rate", float("nan"), "rate=nan is out of range; allowed: [0, 1)"),
    ("rate", True, "rate=True is not valid; allowed: float"),  # a bool is not a number
    ("count", 0, "count=0 is out of range; allowed: [1, inf)"),
    ("count", 2.5, "count=2.5 is not valid; allowed: int"),
    ("count", "5", "count='5' is not valid; allowed: int"),  # text only through parse
    ("count", None, "count=None is not valid; allowed: int"),
    ("mode", "c", "mode='c' is not valid; allowed: a | b"),
    ("flag", 1, "flag=1 is not valid; allowed: bool"),
])
def test_check_is_strict_and_speaks_one_format(name, value, message):
    with pytest.raises(ConfigError) as err:
        fields_of(Knobs)[name].check(value, key=f"x.{name}" if name == "count" else None)
    expected = f"x.{message}" if name == "count" else message
    assert str(err.value) == expected


def test_check_normalises_numpy_scalars_and_integral_floats():
    f = fields_of(Knobs)
    assert type(f["count"].check(np.int64(7))) is int and f["count"].check(4.0) == 4
    assert type(f["rate"].check(np.float32(0.5))) is float and type(f["rate"].check(0)) is float
    assert f["flag"].check(np.bool_(True)) is True


def test_parse_errors_use_the_same_format():
    f = fields_of(Knobs)
    with pytest.raises(ConfigError, match=r"^k\.count='2\.5' is not valid; allowed: int$"):
        f["count"].parse("2.5", key="k.count")
    with pytest.raises(ConfigError, match=r"^count=0 is out of range; allowed: \[1, inf\)$"):
        f["count"].parse("0")


def test_resolve_applies_overrides_and_names_unknown_keys():
    k = resolve(Knobs, {"count": 5}, {"rate": "0.1", "widths": "2"}, owner="Knobs", prefix="k.")
    assert (k.rate, k.count, k.widths) == (0.1, 5, (2,))
    with pytest.raises(ConfigError, match=r"^unknown config key 'k\.rat' for Knobs; allowed: k\.rate, k\.count, "):
        resolve(Knobs, {}, {"rat": "1"}, owner="Knobs", prefix="k.")
    with pytest.raises(ConfigError, match=r"^k\.count=0 is out of range"):
        resolve(Knobs, {"count": 0}, {}, owner="Knobs", prefix="k.")  # defaults are checked too


def test_bound_text_for_flags_and_suite_files():
    assert Field("n", int, min=1).bound_text() == "an integer >= 1"
    assert Field("x", float, min=0, min_exclusive=True).bound_text() == "a number > 0"
    assert Field("p", float, min=0, max=1).bound_text() == "a number in [0, 1]"
    assert Field("s", int | None, min=1).bound_text() == "an integer >= 1"


def test_a_union_takes_the_first_alternative_that_fits():
    f = Field("threads", int | Literal["auto"], min=0)
    assert (f.parse("4"), f.parse("auto"), f.check(2), f.check("auto")) == (4, "auto", 2, "auto")
    with pytest.raises(ConfigError, match=r"^threads='many' is not valid; allowed: int \| auto$"):
        f.parse("many")
    with pytest.raises(ConfigError, match=r"^threads=-1 is out of range; allowed: \[0, inf\)$"):
        f.check(-1)
