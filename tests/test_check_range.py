"""params.check_range, the suite's one range check: known answers for the bounds, the kinds of value
it refuses (booleans, NaN, infinities when finite, strings) and the one message shape."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from anonaudit.anonymizers.classical import GaussianBlur
from anonaudit.errors import ConfigError
from anonaudit.params import check_range, describe_range


@pytest.mark.parametrize("value, bounds, allowed", [
    (-1, {"gt": 0}, "a number > 0"),
    (1.0, {"ge": 0, "lt": 1}, r"a number in \[0, 1\)"),
    (0, {"gt": 0, "le": 1}, r"a number in \(0, 1\]"),
    (2, {"le": 1}, "a number <= 1"),
    (1.5, {"ge": 1, "integer": True}, "an integer >= 1"),
    (True, {"ge": 0}, "a number >= 0"),  # a boolean is a config slip, never a number
    (math.nan, {"ge": 0}, "a number >= 0"),
    (math.inf, {"ge": 0, "finite": True}, "a finite number >= 0"),
    ("3", {"le": 3}, "a number <= 3"),
    (None, {"gt": 0}, "a number > 0"),
])
def test_out_of_range_values_name_the_owner_parameter_range_and_value(value, bounds, allowed):
    with pytest.raises(ConfigError, match=rf"^thing: p must be {allowed}, got {re.escape(repr(value))}$"):
        check_range("thing", "p", value, **bounds)


@pytest.mark.parametrize("value, bounds", [
    (0, {"ge": 0, "lt": 1}), (0.999, {"ge": 0, "lt": 1}), (1, {"gt": 0, "le": 1}),
    (np.int64(3), {"ge": 1, "integer": True}),
    (np.float32(0.5), {"ge": 0, "le": 1}), (math.inf, {"ge": 0}), (None, {"gt": 0, "optional": True}), (-5, {}),
])
def test_values_within_the_bounds_pass(value, bounds):
    check_range("thing", "p", value, **bounds)


def test_the_owner_is_named_by_its_registry_name_and_optional_says_null():
    with pytest.raises(ConfigError, match=r"^gaussian_blur: sigma must be a finite number >= 0, got -1$"):
        GaussianBlur(sigma=-1)
    with pytest.raises(ConfigError, match=r"^GaussianBlur: k must be an integer >= 2 or null, got 1$"):
        check_range(type("GaussianBlur", (), {}), "k", 1, ge=2, integer=True, optional=True)


def test_a_range_has_at_most_one_bound_per_side():
    assert describe_range(ge=0, le=255) == "a number in [0, 255]"
    assert describe_range(integer=True) == "an integer"
    with pytest.raises(ValueError, match="at most one lower bound"):
        describe_range(ge=0, gt=0)
