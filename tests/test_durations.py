"""parse_duration / format_duration: the accepted spellings, the errors, the round trip."""

from __future__ import annotations

import pytest

from syncd.durations import SURREAL_UNITS, UNITS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1m 30s", 90.0),
        (" 5s ", 5.0),
        ("5 s", 5.0),
        ("1d2h3m4s5ms", 93784.005),
        ("30s1m", 90.0),  # any order, like Go's time.ParseDuration
        ("5", 5.0),  # bare number: seconds
        ("0.02", 0.02),
        ("0", 0.0),
        ("0s", 0.0),
        ("-5s", -5.0),  # parsing is signed; range checks belong to the caller
        ("+5s", 5.0),
    ],
)
def test_parse_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-",
        "s",
        "5x",
        "5 parsecs",
        "five",
        "5sec",
        "5S",
        "1m30",
        "ms5",
        "5s-",
        "1e3",
        "inf",
    ],
)
def test_parse_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    message = str(info.value)
    assert f'"{text}"' in message  # quotes what it could not read
    assert '"250ms"' in message  # and shows what it can


def test_parse_rejects_overflow() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_duration("9" * 400 + "d")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5.0, "5s"),
        (0.02, "20ms"),
        (90, "1m30s"),
        (0, "0s"),
        (0.2, "200ms"),
        (604800, "7d"),
        (3600, "1h"),
        (1.5, "1s500ms"),
        (93784.005, "1d2h3m4s5ms"),
        (0.0015, "1.5ms"),
        (0.000001, "0.001ms"),
        (-5, "-5s"),
        (0.1 + 0.2, "300ms"),  # float noise does not leak into the text
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds", [0.0, 0.001, 0.02, 0.25, 1.0, 1.5, 59.999, 90.0, 3599.5, 86400.0, 1e7, 0.0015]
)
def test_round_trip(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)


def test_format_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        format_duration(float("inf"))
    with pytest.raises(ValueError):
        format_duration(float("nan"))


def test_one_table_of_units_for_config_and_surrealql() -> None:
    assert UNITS == {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    assert list(SURREAL_UNITS) == ["y", "w", "d", "h", "m", "s", "ms", "µs", "ns"]
    sizes = list(SURREAL_UNITS.values())
    assert sizes == sorted(sizes, reverse=True)  # largest first: formatting walks it so
    assert SURREAL_UNITS["y"] == 365 * SURREAL_UNITS["d"] == 365 * 86_400 * 10**9
