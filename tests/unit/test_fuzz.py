"""Fuzzing of every parser, bounded for CI (the long run is ``make fuzz``).

The properties live in ``tests/fuzz/properties.py`` (see its docstring): only
the project's own errors escape, every parse error names a position inside
the input, and what parses can be evaluated, rendered, stored and planned.
Here Hypothesis drives them with strategies built from the same word lists
as the random generator of ``tests/fuzz/run.py``, so failures shrink; the
last test runs that generator itself for a few thousand inputs.

Below them: regression tests for the bugs the fuzzer found.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipmp.config.evaluate import evaluate
from ipmp.config.parse import parse_argv
from ipmp.errors import ConfigError, ParseError, Position
from ipmp.model import Family
from tests.fuzz import properties as prop
from tests.fuzz import run as fuzz_run

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_junk = st.text(alphabet=st.sampled_from(prop.CHARS), max_size=8)
_word = st.one_of(
    st.sampled_from(prop.WORDS), st.sampled_from(prop.UNSUPPORTED), _junk, st.text(max_size=6),
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
)
_blank = st.sampled_from([" ", "\t", "\n", "\\\n", "\\", "#", " \\ "])


@FAST
@given(st.lists(st.one_of(_word, _blank), max_size=18).map("".join),
       st.sampled_from([Family.INET, Family.INET6]))
def test_hostname_files(data: str, family: Family) -> None:
    prop.check_hostname(data, family)


@FAST
@given(st.lists(st.one_of(_word, _blank), max_size=12).map(" ".join),
       st.sampled_from([Family.INET, Family.INET6]))
def test_hostname_files_of_words(data: str, family: Family) -> None:
    prop.check_hostname(data, family)


_head = st.one_of(
    st.just([]),
    st.tuples(st.sampled_from(["qfe0", "qfe1", "qfe0:1", "qfe1:1", "qfe0:x"]),
              st.sampled_from([[], ["inet"], ["inet6"]]), st.sampled_from([[], ["plumb"]]))
    .map(lambda t: [t[0], *t[1], *t[2]]),
    st.sampled_from([["-a"], ["-ad4"], ["-a6"], ["-aZ"], ["--"], ["-"]]),
)


@FAST
@given(_head, st.lists(_word, max_size=10))
def test_ifconfig_argv(head: list[str], words: list[str]) -> None:
    prop.check_argv(head + words)


_setting_line = st.one_of(
    st.tuples(
        st.sampled_from(["", " ", "   ", "\t"]),
        st.sampled_from(["FAILURE_DETECTION_TIME", "FAILBACK", "TRACK_INTERFACES_ONLY_WITH_GROUPS",
                         "failback", "FAILBAC\u212a"]),
        st.sampled_from(["=", " =", ":"]),
        st.one_of(st.text(max_size=12), st.integers(-(2**70), 2**70).map(str), st.integers(0, 2**40).map(hex),
                  st.sampled_from(["yes", "no", "yesterday", "nope", '"no"'])),
    ).map("".join),
    st.text(max_size=30),
    st.integers(1000, 1030).map(lambda n: " " * n + "FAILBACK=no"),
)


@FAST
@given(st.lists(_setting_line, max_size=8).map("\n".join), st.booleans())
def test_default_mpathd(text: str, newline: bool) -> None:
    prop.check_settings(text + ("\n" if newline else ""))


_env_word = st.one_of(
    st.sampled_from(["192.0.2.1", "2001:db8::1", "255.255.255.0", "0xffffff00", "0xff00ff00", "0x", "#",
                     "router", "myhost", "128.32", "fe80::1%qfe0", ""]),
    _junk, st.ip_addresses().map(str),
)


@FAST
@given(st.lists(st.lists(_env_word, max_size=4).map(" ".join), max_size=8).map("\n".join))
def test_hosts_netmasks_defaultrouter(data: str) -> None:
    prop.check_environment(data)


_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=False),
              st.text(max_size=40), st.sampled_from([*prop.ALL_OPS, "probes", "events"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["v", "op", "ifname", "min_redundancy", "topic", "x"]), inner, max_size=4),
    max_leaves=10,
)
_request = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), _json), "op": st.one_of(st.sampled_from(list(prop.ALL_OPS)), _json)},
    optional={"ifname": st.one_of(st.text(max_size=40), _json), "min_redundancy": _json,
              "topic": st.one_of(st.sampled_from(["probes", "events"]), _json), "extra": _json},
)


@FAST
@given(st.one_of(
    st.binary(max_size=100),
    _json.map(lambda v: json.dumps(v).encode()),
    _request.map(lambda d: json.dumps(d).encode() + b"\n"),
    _request.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
))
def test_ipc_requests(line: bytes) -> None:
    prop.check_ipc(line)


def test_the_long_run_driver_finds_nothing_in_a_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz_run.main(["--inputs", "5000", "--jobs", "1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "total: 5000 inputs" in out and "0 violation(s)" in out, out


def test_the_properties_can_fail() -> None:
    """A broken parser must be caught: the checks are not vacuous."""
    with pytest.raises(prop.Violation, match="outside"):
        prop._file_position(ParseError("bad", Position(prop.SOURCE, 3, 1)), "one line", prop.SOURCE)
    with pytest.raises(prop.Violation, match="not safe to log"):
        prop._require(prop._loggable("a\nb"), "ProtocolError message not safe to log")


# --------------------------------------------------------------------------
# Regressions found by the fuzzer
# --------------------------------------------------------------------------


def test_group_name_with_an_undecodable_byte_is_counted_not_a_crash() -> None:
    """A hostname file or argv byte that is not UTF-8 reaches ``group`` as a lone surrogate.

    ``len(name.encode())`` raised UnicodeEncodeError (a traceback from ipmp-boot).
    """
    prop.check_hostname("myhost netmask + broadcast + group prod\udcff up", Family.INET)
    config = evaluate(prop.CONFIGURED, parse_argv(["qfe0", "group", "g\udcff"]), prop.ENV).config
    qfe0 = config.get("qfe0")
    assert qfe0 is not None and qfe0.group == "g\udcff"


def test_bad_logical_unit_error_names_its_position() -> None:
    """``ifconfig fe80::1`` (a unit that is not a number): the error had no position."""
    with pytest.raises(ConfigError) as caught:
        evaluate(prop.CONFIGURED, parse_argv(["fe80::1"]), prop.ENV)
    assert caught.value.position == Position("", 0, 1)


def test_daemon_log_line_with_an_undecodable_byte_reaches_syslog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same group name, on to in.mpathd: ``syslog.syslog`` raised UnicodeEncodeError.

    (The daemon logs "NIC failure detected on qfe0 of group prod\\udcff"; the
    exception ended its event loop.)  The stand-in encodes as strictly as the
    C module does.
    """
    from ipmp.mpathd import logger

    sent: list[bytes] = []
    monkeypatch.setattr(logger.syslog, "openlog", lambda *args: None)
    monkeypatch.setattr(logger.syslog, "syslog", lambda prio, msg: sent.append(msg.encode("utf-8")))
    log = logger.Logger(to_stderr=False, debug=False)
    log("err", "NIC failure detected on qfe0 of group prod\udcff")
    assert sent == [b"NIC failure detected on qfe0 of group prod\\udcff"]
