"""``/etc/default/mpathd``: the daemon's three tunables, parsed the Solaris way.

Solaris reads the file with ``defread(3C)`` (libcmd ``deflt.c``) from
``in.mpathd``'s ``getdefault()`` and interprets the values in ``main()``
(reference solaris-ipmp.md section 3).  Every quirk of that pair is kept,
because an administrator's existing file must mean the same thing here:

* Each tunable is looked up on its own, scanning from the top; the **first**
  line that starts with ``NAME=`` wins.  ``NAME`` is compared without regard
  to case (in.mpathd turns ``DC_CASE`` off) and only ASCII letters fold, like
  ``strncasecmp`` in the C locale.  There must be no space before ``=``.
* Only leading blanks (``' '``, not tabs) are skipped.  Comments need no rule
  of their own: a line starting with ``#`` can never start with ``NAME=``.
* Quotes are **not** stripped (in.mpathd never sets ``DC_STRIP_QUOTES``), so
  ``FAILBACK="no"`` is an invalid value.
* ``defread`` reads with ``fgets`` into a ``PATH_MAX`` (1024-byte) buffer and
  gives up on the first chunk that does not end in a newline: a line of 1023
  bytes or more (leading blanks included) ends the scan, and so does a last
  line that has no newline.  A NUL byte has the same effect (``strlen`` stops
  short of the newline).
* The value is everything after ``=`` up to the newline, carriage returns and
  trailing blanks included; warnings quote it like that.

Pure module: no I/O.  The caller reads the file (a missing file means all
defaults and no warnings) and logs the returned warnings at LOG_ERR.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_FAILURE_DETECTION_TIME",
    "MIN_FAILURE_DETECTION_TIME",
    "Settings",
    "parse_settings",
]

#: Default failure detection time in ms (``FAILURE_DETECTION_TIME`` in illumos
#: ``mpd_defs.h``; renamed here so it cannot be confused with the file's key).
DEFAULT_FAILURE_DETECTION_TIME = 10000
#: Smallest failure detection time in ms (illumos ``MIN_FAILURE_DETECTION_TIME``).
MIN_FAILURE_DETECTION_TIME = 100

#: ``deflt.c`` reads lines with ``fgets(buf, PATH_MAX)``; PATH_MAX is 1024 on
#: Solaris, so at most 1023 bytes, newline included, fit in one read.
_DEFREAD_BUFSIZE = 1024

# in.mpathd is a 32-bit (ILP32) program: strtol() saturates at the limits of
# a 32-bit long (ERANGE is not checked), and the (int) cast then keeps it.
_LONG_MAX = 2**31 - 1
_LONG_MIN = -(2**31)

# What strtol's isspace() skips in the C locale.
_C_SPACE = " \t\n\v\f\r"

_FDT = "FAILURE_DETECTION_TIME"
_FAILBACK = "FAILBACK"
_TRACK = "TRACK_INTERFACES_ONLY_WITH_GROUPS"


@dataclass(frozen=True)
class Settings:
    """The values in.mpathd runs with (defaults = the shipped file)."""

    failure_detection_time_ms: int = DEFAULT_FAILURE_DETECTION_TIME
    failback: bool = True
    track_interfaces_only_with_groups: bool = True
    #: Solaris 11 transitive probing (``svc:/network/ipmp config/transitive-probing``,
    #: an SMF property, not a line of this file: host/smf); off by default, as Oracle ships it.
    transitive_probing: bool = False


def parse_settings(text: str) -> tuple[Settings, tuple[str, ...]]:
    """Interpret the contents of ``/etc/default/mpathd``.

    Returns the settings and the warnings in the order in.mpathd logs them
    (failure detection time, FAILBACK, TRACK_INTERFACES_ONLY_WITH_GROUPS),
    with the Solaris texts.  Never raises: bad values fall back as Solaris
    does.  ``text`` is the file decoded by the caller; line lengths are
    measured in UTF-8 bytes (``surrogateescape`` keeps undecodable bytes at
    their original length).
    """
    warnings: list[str] = []

    fdt = DEFAULT_FAILURE_DETECTION_TIME
    value = _defread(text, _FDT)
    if value is not None:
        fdt = _strtol(value)
        if fdt <= 0:
            fdt = DEFAULT_FAILURE_DETECTION_TIME
            warnings.append(f"Invalid failure detection time {value}, assuming default {fdt}")
        elif fdt < MIN_FAILURE_DETECTION_TIME:
            fdt = MIN_FAILURE_DETECTION_TIME
            warnings.append(f"Too small failure detection time of {value}, assuming minimum {fdt}")

    failback = _yes_no(text, _FAILBACK, warnings)
    track_only_groups = _yes_no(text, _TRACK, warnings)

    settings = Settings(
        failure_detection_time_ms=fdt,
        failback=True if failback is None else failback,
        track_interfaces_only_with_groups=True if track_only_groups is None else track_only_groups,
    )
    return settings, tuple(warnings)


def _yes_no(text: str, name: str, warnings: list[str]) -> bool | None:
    """in.mpathd's FAILBACK / TRACK_... rule: ``strncasecmp`` against "yes"/"no".

    Only the first three (two) characters are compared, so ``yesterday`` is
    yes and ``nope`` is no.  None means "not set, or invalid" (the caller
    keeps the default yes).
    """
    value = _defread(text, name)
    if value is None:
        return None
    if _ascii_lower(value[:3]) == "yes":
        return True
    if _ascii_lower(value[:2]) == "no":
        return False
    warnings.append(f"Invalid value for {name} {value}")
    return None


def _defread(text: str, name: str) -> str | None:
    """The value of the first line starting with ``name=``, as Solaris ``defread`` finds it."""
    pattern = _ascii_lower(name + "=")
    # split() leaves one element after the last newline: "" for a file that
    # ends in a newline, otherwise an unterminated last line.  That one fails
    # deflt.c's newline check and is never matched, whatever its length
    # (nothing follows it, so dropping it is the whole effect).
    for line in text.split("\n")[:-1]:
        if len(line.encode("utf-8", "surrogateescape")) + 1 >= _DEFREAD_BUFSIZE:
            return None  # fgets returned a chunk without the newline: "line too long"
        if "\0" in line:
            return None  # strlen stops at the NUL, so the newline is not seen either
        body = line.lstrip(" ")
        if _ascii_lower(body[: len(pattern)]) == pattern:
            return body[len(pattern) :]
    return None


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as ``strncasecmp`` in the C locale.

    str.lower() would also fold e.g. U+212A KELVIN SIGN to "k", matching
    names Solaris never would.
    """
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _strtol(text: str) -> int:
    """C ``strtol(text, NULL, 0)`` on a 32-bit long: base from the prefix, junk ignored.

    Leading C white space and one sign are accepted; ``0x``/``0X`` selects hex
    (only if a hex digit follows, otherwise the ``0`` alone is the number), a
    leading ``0`` octal, anything else decimal.  Parsing stops at the first
    character that is not a digit of the base; no digits at all gives 0.
    Out-of-range values saturate at LONG_MIN/LONG_MAX.
    """
    i = 0
    n = len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base = 10
    if text[i : i + 2] in ("0x", "0X") and i + 2 < n and text[i + 2] in "0123456789abcdefABCDEF":
        base = 16
        i += 2
    elif text[i : i + 1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    value = 0
    while i < n and text[i].isascii() and text[i].lower() in digits:
        value = value * base + int(text[i], 16)
        i += 1
    if negative:
        value = -value
    return max(_LONG_MIN, min(_LONG_MAX, value))
