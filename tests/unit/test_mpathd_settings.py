"""/etc/default/mpathd parsing: every defread / strtol / strncasecmp quirk of Solaris."""

from __future__ import annotations

import pytest

from ipmp.mpathd.settings import (
    DEFAULT_FAILURE_DETECTION_TIME,
    MIN_FAILURE_DETECTION_TIME,
    Settings,
    parse_settings,
)

DEFAULTS = Settings()


def fdt(text: str) -> tuple[int, tuple[str, ...]]:
    settings, warnings = parse_settings(text)
    return settings.failure_detection_time_ms, warnings


def test_constants_and_defaults() -> None:
    assert MIN_FAILURE_DETECTION_TIME == 100
    assert DEFAULT_FAILURE_DETECTION_TIME == 10000
    assert DEFAULTS == Settings(10000, True, True)


@pytest.mark.parametrize("text", ["", "\n", "# nothing here\n", "OTHER=1\n"])
def test_empty_or_unrelated_file_gives_defaults_silently(text: str) -> None:
    assert parse_settings(text) == (DEFAULTS, ())


def test_shipped_file() -> None:
    text = (
        "#\n# Time taken by mpathd to detect a NIC failure in ms.\n#\n"
        "FAILURE_DETECTION_TIME=10000\n"
        "#\n# Failback is enabled by default.\n#\n"
        "FAILBACK=yes\n"
        "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes\n"
    )
    assert parse_settings(text) == (DEFAULTS, ())


def test_all_three_set() -> None:
    text = "FAILURE_DETECTION_TIME=2000\nFAILBACK=no\nTRACK_INTERFACES_ONLY_WITH_GROUPS=no\n"
    assert parse_settings(text) == (Settings(2000, False, False), ())


# ------------------------------------------------------------- defread rules
def test_name_is_case_insensitive() -> None:
    assert parse_settings("failback=no\nTrack_Interfaces_Only_With_Groups=NO\n") == (
        Settings(failback=False, track_interfaces_only_with_groups=False),
        (),
    )


def test_only_ascii_letters_fold() -> None:
    # U+212A KELVIN SIGN lower-cases to "k" in Python, never in strncasecmp.
    assert parse_settings("FAILBAC\u212a=no\n") == (DEFAULTS, ())


def test_leading_spaces_are_skipped_but_not_tabs() -> None:
    assert parse_settings("    FAILBACK=no\n")[0].failback is False
    assert parse_settings("\tFAILBACK=no\n")[0].failback is True


@pytest.mark.parametrize(
    "line", ["FAILBACK =no", "FAILBACK= no", "FAILBACKno", "FAILBACK:no", "export FAILBACK=no"]
)
def test_name_must_be_followed_directly_by_equals(line: str) -> None:
    settings, warnings = parse_settings(line + "\n")
    if line == "FAILBACK= no":
        # Matches, but the value " no" starts with a blank: invalid.
        assert warnings == ("Invalid value for FAILBACK  no",)
    else:
        assert warnings == ()
    assert settings.failback is True


def test_first_matching_line_wins() -> None:
    text = "FAILBACK=no\nFAILBACK=yes\nFAILURE_DETECTION_TIME=500\nfailure_detection_time=700\n"
    assert parse_settings(text) == (Settings(500, False, True), ())


def test_first_line_wins_even_when_invalid() -> None:
    settings, warnings = parse_settings("FAILBACK=maybe\nFAILBACK=no\n")
    assert settings.failback is True
    assert warnings == ("Invalid value for FAILBACK maybe",)


def test_comment_lines_never_match() -> None:
    assert parse_settings("#FAILBACK=no\n# FAILBACK=no\n  #FAILBACK=no\n") == (DEFAULTS, ())


def test_comment_after_the_value_is_part_of_the_value() -> None:
    assert fdt("FAILURE_DETECTION_TIME=300 # ms\n") == (300, ())  # strtol stops at the blank
    settings, warnings = parse_settings("FAILBACK=no # off\n")
    assert settings.failback is False and warnings == ()


def test_quotes_are_not_stripped() -> None:
    settings, warnings = parse_settings('FAILBACK="no"\nFAILURE_DETECTION_TIME="2000"\n')
    assert settings == DEFAULTS
    assert warnings == (
        'Invalid failure detection time "2000", assuming default 10000',
        'Invalid value for FAILBACK "no"',
    )


def test_longest_line_that_fits() -> None:
    # 1022 bytes + newline = 1023 bytes: one fgets() into a 1024-byte buffer.
    filler = "#" + "x" * 1021
    assert len(filler) == 1022
    assert parse_settings(filler + "\nFAILBACK=no\n")[0].failback is False


@pytest.mark.parametrize("length", [1023, 1024, 5000])
def test_too_long_line_stops_the_scan(length: int) -> None:
    filler = "#" + "x" * (length - 1)
    text = "FAILURE_DETECTION_TIME=500\n" + filler + "\nFAILBACK=no\n"
    # Lines before the long one still count; lines after it are never seen.
    assert parse_settings(text) == (Settings(500, True, True), ())


def test_line_length_counts_leading_spaces_and_bytes() -> None:
    assert parse_settings(" " * 1011 + "FAILBACK=no\n")[0].failback is False  # 1022 bytes
    assert parse_settings(" " * 1012 + "FAILBACK=no\n")[0].failback is True  # 1023 bytes
    # "é" is two bytes in UTF-8: 511 of them + "#" = 1023 bytes in 512 characters.
    assert parse_settings("#" + "\u00e9" * 511 + "\nFAILBACK=no\n")[0].failback is True
    assert parse_settings("#" + "\u00e9" * 510 + "\nFAILBACK=no\n")[0].failback is False


def test_long_matching_line_is_not_matched() -> None:
    line = "FAILURE_DETECTION_TIME=" + "1" * 1000
    assert parse_settings(line + "\n") == (DEFAULTS, ())


def test_unterminated_last_line_is_never_matched() -> None:
    # deflt.c treats a chunk without a newline as "line too long".
    assert parse_settings("FAILBACK=no") == (DEFAULTS, ())
    assert parse_settings("FAILURE_DETECTION_TIME=500\nFAILBACK=no")[0] == Settings(500, True, True)


def test_nul_byte_stops_the_scan() -> None:
    assert parse_settings("#a\0b\nFAILBACK=no\n") == (DEFAULTS, ())
    assert parse_settings("FAILBACK=no\0\n") == (DEFAULTS, ())


def test_value_keeps_carriage_return_and_trailing_blanks() -> None:
    # A DOS line ending: strncasecmp only looks at the first 3 / 2 characters.
    assert parse_settings("FAILBACK=no\r\n")[0].failback is False
    assert fdt("FAILURE_DETECTION_TIME=400\r\n") == (400, ())
    _, warnings = parse_settings("FAILBACK=off \r\n")
    assert warnings == ("Invalid value for FAILBACK off \r",)


def test_empty_value_is_invalid_for_all_three() -> None:
    text = "FAILURE_DETECTION_TIME=\nFAILBACK=\nTRACK_INTERFACES_ONLY_WITH_GROUPS=\n"
    assert parse_settings(text) == (
        DEFAULTS,
        (
            "Invalid failure detection time , assuming default 10000",
            "Invalid value for FAILBACK ",
            "Invalid value for TRACK_INTERFACES_ONLY_WITH_GROUPS ",
        ),
    )


def test_warnings_come_in_solaris_order_whatever_the_file_order() -> None:
    text = "TRACK_INTERFACES_ONLY_WITH_GROUPS=x\nFAILBACK=y\nFAILURE_DETECTION_TIME=5\n"
    assert parse_settings(text)[1] == (
        "Too small failure detection time of 5, assuming minimum 100",
        "Invalid value for FAILBACK y",
        "Invalid value for TRACK_INTERFACES_ONLY_WITH_GROUPS x",
    )


# ----------------------------------------------------- FAILURE_DETECTION_TIME
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10000", 10000),
        ("100", 100),
        ("2500", 2500),
        ("10000ms", 10000),  # trailing junk ignored
        ("1000.9", 1000),
        ("0x3e8", 1000),  # hex
        ("0X3E8", 1000),
        ("01750", 1000),  # leading 0: octal
        ("+1000", 1000),
        (" 1000", 1000),  # strtol skips white space (defread already ate the blanks)
        ("\t\v1000", 1000),
        ("99999999", 99999999),  # no maximum
        ("2147483647", 2147483647),
        ("99999999999999", 2147483647),  # saturates at LONG_MAX (32-bit in.mpathd)
        ("0x7fffffffffff", 2147483647),
    ],
)
def test_fdt_accepted(value: str, expected: int) -> None:
    assert fdt(f"FAILURE_DETECTION_TIME={value}\n") == (expected, ())


@pytest.mark.parametrize(
    "value",
    ["0", "-1", "-5000", "abc", "ms", "", "0x", "0xg", "08", "-0x10", "--5", "+-5", "- 5", "-99999999999999"],
)
def test_fdt_invalid_gives_default(value: str) -> None:
    assert fdt(f"FAILURE_DETECTION_TIME={value}\n") == (
        10000,
        (f"Invalid failure detection time {value}, assuming default 10000",),
    )


@pytest.mark.parametrize(("value", "parsed"), [("1", 1), ("99", 99), ("0x63", 99), ("010", 8), ("50ms", 50)])
def test_fdt_too_small_gives_minimum(value: str, parsed: int) -> None:
    assert 0 < parsed < 100
    assert fdt(f"FAILURE_DETECTION_TIME={value}\n") == (
        100,
        (f"Too small failure detection time of {value}, assuming minimum 100",),
    )


def test_fdt_digits_must_be_ascii() -> None:
    # str.isdigit() accepts Arabic-Indic digits; C strtol does not.
    value = "\u0661\u0662\u0663"
    assert fdt(f"FAILURE_DETECTION_TIME={value}\n")[0] == 10000


# ------------------------------------------------------ yes/no prefix matching
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),
        ("YES", True),
        ("Yes", True),
        ("yesterday", True),
        ("yes please", True),
        ("no", False),
        ("NO", False),
        ("nope", False),
        ("none", False),
        ("no way", False),
    ],
)
@pytest.mark.parametrize("name", ["FAILBACK", "TRACK_INTERFACES_ONLY_WITH_GROUPS"])
def test_yes_no_prefix(name: str, value: str, expected: bool) -> None:
    settings, warnings = parse_settings(f"{name}={value}\n")
    assert warnings == ()
    field = "failback" if name == "FAILBACK" else "track_interfaces_only_with_groups"
    assert getattr(settings, field) is expected


@pytest.mark.parametrize(
    "value", ["y", "ye", "n", "true", "false", "1", "0", "on", "off", " yes", "'no'", "ńo"]
)
@pytest.mark.parametrize("name", ["FAILBACK", "TRACK_INTERFACES_ONLY_WITH_GROUPS"])
def test_yes_no_invalid_keeps_default_yes(name: str, value: str) -> None:
    settings, warnings = parse_settings(f"{name}={value}\n")
    assert settings == DEFAULTS
    assert warnings == (f"Invalid value for {name} {value}",)


def test_settings_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULTS.failback = False  # type: ignore[misc]
