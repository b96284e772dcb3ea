"""The fuzzing properties of every parser, shared by the suite and ``make fuzz``.

One ``check_*`` function per input kind.  Each takes one input, runs it
through the product's parser -- and, where the parser's output feeds more
pure code, through that too (evaluate, render, the state store codec, the
planner and the fake kernel) -- and raises :class:`Violation` when a promise
is broken:

* nothing raises but the project's own errors (``IpmpError`` subclasses, or
  ``ApplyError`` from the fake kernel, which ``apply`` would revert);
* every ``ParseError`` names a position, and the position is inside the
  input (argv index within argv; ``file:line:col`` within the file);
* every ``ConfigError`` from evaluating a command names a position;
* the IPC codec refuses with ``ProtocolError`` only, with a message that is
  safe for one log line, and what it accepts round-trips;
* ``/etc/default/mpathd`` never raises and always yields usable settings;
* a configuration the evaluator accepts renders, survives the state store,
  and its plan, carried out on the fake kernel, leaves nothing to do.

``tests/unit/test_fuzz.py`` drives these with Hypothesis (bounded, in CI);
``tests/fuzz/run.py`` drives them with a seeded random generator
(:func:`generate`) for a million inputs (``make fuzz``).  The generators are
here too, so both drivers share one idea of what an input looks like.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, ip_address
from typing import Any

from ipmp.apply import full_scope, make_plan, sysctl_keys
from ipmp.config.commands import Action, Command
from ipmp.config.evaluate import evaluate
from ipmp.config.keywords import KEYWORDS
from ipmp.config.parse import parse_argv
from ipmp.config.render import render
from ipmp.errors import ApplyError, ConfigError, IpmpError, ParseError, Position
from ipmp.host.hostfiles import parse_hostname_text
from ipmp.host.lookups import parse_defaultrouter, parse_hosts, parse_netmasks
from ipmp.host.state import Stored, dumps, loads
from ipmp.linux.view import merge
from ipmp.model import Config, Environment, Family
from ipmp.mpathd import ipc, protocol
from ipmp.mpathd.settings import MIN_FAILURE_DETECTION_TIME, parse_settings
from tests.fakes import FakeKernel, make_kernel

__all__ = [
    "TARGETS",
    "Violation",
    "check_argv",
    "check_environment",
    "check_hostname",
    "check_ipc",
    "check_settings",
    "generate",
]

SOURCE = "/fuzz/etc/hostname.qfe0"
NICS = ("qfe0", "qfe1")
KERNEL = make_kernel(*NICS)
BASE: Config = merge(KERNEL, ())
ENV = Environment(
    hosts=(
        ("myhost", ip_address("192.0.2.100")),
        ("myhost-qfe0", ip_address("192.0.2.10")),
        ("myhost6", ip_address("2001:db8::100")),
    ),
    netmasks=((IPv4Address("192.0.2.0"), IPv4Address("255.255.255.0")),),
    defaultrouters=(ip_address("192.0.2.1"), ip_address("2001:db8::1")),
)




def _configured(config: Config, *argvs: list[str]) -> Config:
    for argv in argvs:
        config = evaluate(config, parse_argv(argv), ENV).config
    return config


#: What ``ifconfig ARGV`` is run against: qfe0 plumbed for both families with
#: a data address in group prod, qfe1 present but not plumbed.
CONFIGURED: Config = _configured(
    BASE, ["qfe0", "plumb", "192.0.2.100/24", "group", "prod", "up"], ["qfe0", "inet6", "plumb", "up"]
)


class Violation(AssertionError):
    """A fuzzing property does not hold for an input."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Violation(message)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


def _file_position(err: ParseError, data: str, source: str) -> None:
    pos = err.position
    _require(pos is not None, f"ParseError without a position: {err!r}")
    assert pos is not None
    _require(pos.source == source, f"ParseError names {pos.source!r}, not {source!r}: {err}")
    lines = data.split("\n")
    _require(1 <= pos.line <= len(lines), f"line {pos.line} outside 1..{len(lines)}: {err}")
    # Implicit words (netmask + broadcast + up) point just past the line's end.
    _require(1 <= pos.col <= len(lines[pos.line - 1]) + 2, f"column {pos.col} outside line {pos.line}: {err}")


def check_hostname(data: str, family: Family) -> None:
    """A hostname file's text, booted the way ``ipmp-boot`` does (plumb, lines, inet6 up)."""
    try:
        commands = parse_hostname_text(data, "qfe0", family, SOURCE)
    except ParseError as err:
        _file_position(err, data, SOURCE)
        return
    where = Position(SOURCE, 1, 1)
    boot = [Command("qfe0", family, (Action("plumb", None, where, implicit=True),), where), *commands]
    if family is Family.INET6:
        boot.append(Command("qfe0", family, (Action("up", None, where, implicit=True),), where))
    _evaluate_and_plan(boot)


def check_argv(argv: Sequence[str]) -> None:
    """``ifconfig ARGV`` against ``CONFIGURED``."""
    try:
        command = parse_argv(argv)
    except ParseError as err:
        if not argv:
            return  # the bare usage message: there is no word to point at
        pos = err.position
        _require(pos is not None, f"ParseError without a position: {err!r}")
        assert pos is not None
        _require(pos.source == "" and 1 <= pos.col <= len(argv),
                 f"argv position {pos.col} outside 1..{len(argv)}: {err}")
        return
    _evaluate_and_plan([command], CONFIGURED)


def _evaluate_and_plan(commands: Sequence[Command], config: Config = BASE) -> None:
    for command in commands:
        try:
            config = evaluate(config, command, ENV).config
        except ConfigError as err:
            _require(err.position is not None, f"ConfigError without a position: {err!r}")
            return
    # What ifconfig -a would print, and what the state store would keep.
    render(config)
    # (The store keeps configuration, not kernel facts such as the index:
    # what it writes must read back to the same text.)
    text = dumps(Stored(tuple(i for i in config.interfaces if not i.loopback), ENV.defaultrouters))
    _require(dumps(loads(text)) == text, "the state store does not round-trip this configuration")
    names = sorted(i.name for i in config.interfaces if i.name in NICS)
    keys = sysctl_keys(names)
    scope = full_scope(config, names)
    kernel = FakeKernel(KERNEL)
    plan = make_plan(kernel.state(keys), config, scope, ENV.defaultrouters)
    try:
        kernel.run(plan)
    except ApplyError:
        return  # apply() would revert; the fake kernel refuses what Linux refuses
    left = make_plan(kernel.state(keys), config, scope, ENV.defaultrouters)
    _require(not left, f"after the plan, still to do: {[str(op) for op in left]}")


def check_environment(data: str) -> None:
    """The same text as ``/etc/hosts``, ``/etc/netmasks`` and ``/etc/defaultrouter``."""
    for parser in (parse_hosts, parse_netmasks, parse_defaultrouter):
        try:
            parser(data, "/fuzz/etc/f")
        except ParseError as err:
            _file_position(err, data, "/fuzz/etc/f")


def check_settings(text: str) -> None:
    """``/etc/default/mpathd``: never an error, always usable values."""
    settings, warnings = parse_settings(text)
    _require(settings.failure_detection_time_ms >= MIN_FAILURE_DETECTION_TIME,
             f"failure detection time {settings.failure_detection_time_ms} below the minimum")
    flags = (settings.failback, settings.track_interfaces_only_with_groups)
    _require(all(isinstance(flag, bool) for flag in flags), "yes/no settings must be booleans")
    _require(len(warnings) <= 3 and all(isinstance(w, str) for w in warnings), f"odd warnings {warnings!r}")


#: Every op the codec knows (``subscribe`` and its ``topic`` are newer than this file).
ALL_OPS: tuple[str, ...] = (*protocol.OPS, *getattr(ipc, "STREAM_OPS", ()))


def _loggable(text: str) -> bool:
    return text.isprintable() and len(text) <= 300


def check_ipc(line: bytes) -> None:
    """One control-socket request line, as the daemon decodes it."""
    try:
        request = protocol.decode_request(line)
    except protocol.ProtocolError as err:
        _require(_loggable(err.message), f"ProtocolError message not safe to log: {err.message!r}")
        return
    _require(request.op in ALL_OPS, f"accepted op {request.op!r}")
    _require(len(request.ifname) <= protocol.MAX_IFNAME and request.ifname.isprintable(),
             f"accepted ifname {request.ifname!r}")
    _require(0 <= request.min_redundancy < 2**32, f"accepted min_redundancy {request.min_redundancy}")
    _require(protocol.decode_request(protocol.encode_request(request)) == request,
             "request does not round-trip")


#: name -> (generator, check); the generator makes one input from a Random.
TARGETS: dict[str, tuple[Callable[[random.Random], Any], Callable[[Any], None]]] = {}


def run_target(name: str, value: Any) -> None:
    """Check one generated value of target ``name``; only Violation and unexpected errors escape."""
    check = TARGETS[name][1]
    try:
        check(value)
    except Violation:
        raise
    except IpmpError as err:
        raise Violation(f"{type(err).__name__} escaped a parser that must catch it: {err}") from err


# --------------------------------------------------------------------------
# Random generators (a million inputs must be cheap: no Hypothesis here)
# --------------------------------------------------------------------------

#: Words Linux cannot honour: rarer, so that most inputs get past the parser.
UNSUPPORTED: tuple[str, ...] = tuple(kw.word for kw in KEYWORDS if not kw.supported)
WORDS: tuple[str, ...] = (
    *(kw.word for kw in KEYWORDS if kw.supported),
    "inet", "inet6", "plumb", "unplumb", "up", "down", "addif", "removeif", "group", "prod", "",
    "netmask", "+", "broadcast", "ether", "standby", "-failover", "deprecated", "mtu", "1500", "0",
    "192.0.2.5", "192.0.2.5/24", "192.0.2.5/33", "192.0.2.255", "0.0.0.0", "255.255.255.0",
    "0xffffff00", "0xfffff0ff", "0x", "255.0.255.0", "2001:db8::5", "2001:db8::5/64", "2001:db8::5/129",
    "fe80::1", "::", "::1/128", "myhost", "myhost-qfe0", "myhost6", "nohost", "/24", "/",
    "8:0:20:a1:b2:c3", "02:00:00:00:01:01", "qfe0", "qfe1", "qfe0:1", "qfe0:99", "qfe0:0", "qfe1:4294967296",
    "qfe9", "lo", "-a", "-ad", "-au4", "-a6", "-aZ", "--", "-", "-x",
)
CHARS = ("a", "0", "9", ".", ":", "/", "-", "+", "#", "\\", " ", "\t", "\n", "\r", "\x00", "\x0b",
         "=", '"', "'", "é", "\u212a", "\udcff", "\u2028", "\x85", "\ufeff", "😀")


def _junk(rng: random.Random, limit: int = 8) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, limit)))


def _word(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.75:
        return rng.choice(WORDS)
    if roll < 0.85:
        return str(ip_address(rng.getrandbits(32))) + rng.choice(("", "", "", "/", f"/{rng.randint(0, 40)}"))
    if roll < 0.88:
        return "x" * rng.choice((15, 16, 31, 32, 300))
    if roll < 0.9:
        return rng.choice(UNSUPPORTED)
    return _junk(rng)


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        at = rng.randint(0, len(chars))
        if op == 0:
            chars.insert(at, rng.choice(CHARS))
        elif chars and op == 1:
            del chars[min(at, len(chars) - 1)]
        elif chars:
            chars[min(at, len(chars) - 1)] = rng.choice(CHARS)
    return "".join(chars)


_TAIL = "addif myhost-qfe0 deprecated -failover netmask + broadcast + up"
GOOD_LINES = (
    "myhost netmask + broadcast + group prod up " + _TAIL,
    "myhost netmask + broadcast + group prod up \\\n\t" + _TAIL,
    "myhost-qfe0 netmask + broadcast + deprecated -failover group prod standby up",
    "myhost",
    "addif 2001:db8::5/64 up\naddif myhost6 -failover up",
    "# comment\n192.0.2.5/24 broadcast + up\nether 02:00:00:00:01:01 mtu 1400 group \"\" up\n",
)


def gen_hostname(rng: random.Random) -> tuple[str, Family]:
    family = Family.INET6 if rng.random() < 0.3 else Family.INET
    if rng.random() < 0.3:
        return _mutate(rng, rng.choice(GOOD_LINES)), family
    parts = []
    for _ in range(rng.randint(0, 16)):
        roll = rng.random()
        parts.append(rng.choice((" ", "\t", "\n", "\\\n", "\\", "#", " ")) if roll < 0.35 else _word(rng))
        if roll >= 0.35:
            parts.append(rng.choice((" ", " ", "\t", "\n")))
    return "".join(parts), family


def gen_argv(rng: random.Random) -> list[str]:
    head: list[str] = []
    roll = rng.random()
    if roll < 0.7:
        head.append(rng.choice(("qfe0", "qfe1", "qfe0:1", "qfe0:2", "qfe1:1")))
        if rng.random() < 0.6:
            head.append(rng.choice(("inet", "inet6")))
        if rng.random() < 0.6:
            head.append("plumb")
    elif roll < 0.8:
        head.append(rng.choice(("-a", "-ad", "-au4", "-a6", "-aZ", "-", "--")))
    return head + [_word(rng) for _ in range(rng.randint(0, 10))]


def gen_settings(rng: random.Random) -> str:
    names = ("FAILURE_DETECTION_TIME", "FAILBACK", "TRACK_INTERFACES_ONLY_WITH_GROUPS", "failback",
             "Failure_Detection_Time", "FAILBAC\u212a", "#FAILBACK", "")
    values = ("yes", "no", "YES", "No", "yesterday", "nope", "maybe", '"no"', "", "0", "-1", "99",
              "100", "700", "0x7d0", "0x", "010", "08", "2147483648", "99999999999999999999", " 500",
              "+300", "-0x10", "\t10000", "10000 ", "10000\r")
    lines = []
    for _ in range(rng.randint(0, 8)):
        roll = rng.random()
        if roll < 0.8:
            pad = rng.choice(("", "", " ", "  ", "\t"))
            sep = rng.choice(("=", "=", "=", " =", ":"))
            lines.append(pad + rng.choice(names) + sep + rng.choice(values))
        elif roll < 0.9:
            lines.append(" " * rng.choice((1010, 1011, 1012, 1100)) + "FAILBACK=no")
        else:
            lines.append(_junk(rng, 20))
    text = "\n".join(lines)
    return text + ("\n" if rng.random() < 0.85 else "")


def gen_environment(rng: random.Random) -> str:
    items = ("192.0.2.1", "192.0.2.0", "2001:db8::1", "255.255.255.0", "0xffffff00", "0xff00ff00",
             "255.0.255.0", "0x", "128.32", "router", "myhost", "#", "# comment", "localhost", "1.2.3.4.5",
             "::ffff:192.0.2.1", "fe80::1%qfe0", "")
    lines = []
    for _ in range(rng.randint(0, 8)):
        words = [rng.choice(items) if rng.random() < 0.8 else _junk(rng) for _ in range(rng.randint(0, 4))]
        lines.append(rng.choice((" ", "\t", "  ")).join(words))
    return "\n".join(lines) + rng.choice(("", "\n"))


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.2:
        return rng.choice((0, 1, -1, 2**32 - 1, 2**32, 2**63, -(2**63), 10**30))
    if roll < 0.3:
        return rng.choice((True, False, None, 1.0, 1e308, float("nan")))
    if roll < 0.6:
        return rng.choice(("ping", "query", "offline", "undo_offline", "subscribe", "probes", "events",
                           "qfe0", "", "x" * 31, "x" * 32,
                           "q\nfe0", "\x1b[31m", "\u202e", _junk(rng)))
    if depth < 3 and roll < 0.8:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3:
        keys = ("v", "op", "ifname", "min_redundancy", "topic", "x", "")
        return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return None


def gen_ipc(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        doc: dict[str, Any] = {"v": 1, "op": rng.choice((*ALL_OPS, "bad"))}
        for key in ("ifname", "min_redundancy", "topic", "v", "op", "extra"):
            if rng.random() < 0.4:
                doc[key] = _json_value(rng)
        line = json.dumps(doc).encode() + b"\n"
    elif roll < 0.7:
        line = json.dumps(_json_value(rng)).encode()
    elif roll < 0.8:
        line = b"[" * rng.choice((10, 1000, 100000)) + b"]" * rng.choice((0, 10))
    elif roll < 0.9:
        line = rng.randbytes(rng.randint(0, 64))
    else:
        line = _mutate(rng, '{"v": 1, "op": "offline", "ifname": "qfe0", "min_redundancy": 1}\n').encode(
            "utf-8", "surrogateescape")
    return line


def _argv_check(value: list[str]) -> None:
    check_argv(value)


def _hostname_check(value: tuple[str, Family]) -> None:
    check_hostname(*value)


TARGETS.update({
    "hostname": (gen_hostname, _hostname_check),
    "argv": (gen_argv, _argv_check),
    "settings": (gen_settings, check_settings),
    "environment": (gen_environment, check_environment),
    "ipc": (gen_ipc, check_ipc),
})


def generate(name: str, rng: random.Random) -> Any:
    return TARGETS[name][0](rng)
