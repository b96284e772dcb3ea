"""Shared helpers for the real-kernel tests of ``ipmp-boot`` and ``ifconfig``.

The console scripts run inside the lab's host namespace with an alternate
root (a copy of one ``examples/hostname.files`` folder under ``tmp_path``);
the kernel is read back with ``ip -j`` from outside the product's code paths.

What every example must produce is written down here by hand (``SPECS``),
from the hostname files and the routing recipe of linux-mapping.md, so a
test compares the kernel with an independent expectation and not with the
product's own idea of it.

Only documentation addresses are used, only in the fixtures' namespaces.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipmp.lab.topology import Topology

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "hostname.files"
GOLDEN = Path(__file__).resolve().parent / "golden"
#: The console scripts of the venv the tests run in.
BIN = Path(sys.executable).parent

#: The type of conftest's ``make_topology`` fixture.
MakeTopology = Callable[..., Topology]

ROUTER = "192.0.2.1"
TABLE_BASE = 1000
METRIC_BASE = 100
PREF_TEST = 100
PREF_DATA = 200
PROTO = "73"


# --------------------------------------------------------------------------
# What each example must configure
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Addr:
    """One address of an example: the NIC and logical name holding it after boot."""

    nic: str
    label: str
    ip: str
    test: bool
    prefixlen: int = 24
    broadcast: str | None = "192.0.2.255"

    @property
    def unit(self) -> int:
        _, _, tail = self.label.partition(":")
        return int(tail) if tail else 0

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip).version

    @property
    def link_local(self) -> bool:
        """The kernel's own IPv6 link-local: the test address, never added by a plan."""
        return ipaddress.ip_address(self.ip).is_link_local


def _a(nic: str, label: str, ip: str, *, test: bool = False) -> Addr:
    return Addr(nic, label, ip, test)


def _a6(nic: str, label: str, ip: str) -> Addr:
    """An IPv6 data address (the label is the Solaris logical name; Linux keeps none)."""
    return Addr(nic, label, ip, False, prefixlen=64, broadcast=None)


def _ll(nic: str, ip: str) -> Addr:
    """The link-local of ``nic`` (EUI-64 of the lab's MAC), marked -failover: the IPv6 test address."""
    return Addr(nic, nic, ip, True, prefixlen=64, broadcast=None)


#: Hand-written expectations, one entry per example folder (unit order per NIC).
SPECS: dict[str, tuple[Addr, ...]] = {
    "active-active": (
        _a("qfe0", "qfe0", "192.0.2.100"),
        _a("qfe0", "qfe0:1", "192.0.2.10", test=True),
        _a("qfe1", "qfe1", "192.0.2.101"),
        _a("qfe1", "qfe1:1", "192.0.2.11", test=True),
    ),
    "active-standby": (
        _a("qfe0", "qfe0", "192.0.2.100"),
        _a("qfe0", "qfe0:1", "192.0.2.10", test=True),
        _a("qfe1", "qfe1", "192.0.2.11", test=True),
    ),
    "link-only": (
        _a("bge0", "bge0", "192.0.2.100"),
        _a("bge1", "bge1", "192.0.2.101"),
    ),
    "single-line": (_a("hme0", "hme0", "192.0.2.100"),),
    "test-on-unit0": (
        _a("ce0", "ce0", "192.0.2.10", test=True),
        _a("ce0", "ce0:1", "192.0.2.100"),
        _a("ce1", "ce1", "192.0.2.11", test=True),
    ),
    "dual-stack": (
        _a("qfe0", "qfe0", "192.0.2.100"),
        _a("qfe0", "qfe0:1", "192.0.2.10", test=True),
        _a("qfe1", "qfe1", "192.0.2.101"),
        _a("qfe1", "qfe1:1", "192.0.2.11", test=True),
        _ll("qfe0", "fe80::ff:fe00:101"),
        _a6("qfe0", "qfe0:1", "2001:db8::100"),
        _ll("qfe1", "fe80::ff:fe00:102"),
        _a6("qfe1", "qfe1:1", "2001:db8::101"),
    ),
    "ipv6-only": (
        _ll("e1000g0", "fe80::ff:fe00:101"),
        _a6("e1000g0", "e1000g0:1", "2001:db8::100"),
        _ll("e1000g1", "fe80::ff:fe00:102"),
    ),
}


def example_names() -> list[str]:
    """Every example folder (an alternate root with an ``etc``)."""
    return sorted(p.name for p in EXAMPLES.iterdir() if (p / "etc").is_dir())


def example_nics(root: Path) -> tuple[str, ...]:
    """The NIC names of an example's ``hostname.<if>`` / ``hostname6.<if>`` files."""
    names = {
        p.name.partition(".")[2]
        for pattern in ("hostname.*", "hostname6.*")
        for p in (root / "etc").glob(pattern)
    }
    return tuple(sorted(names))


def spec(example: str) -> tuple[Addr, ...]:
    try:
        return SPECS[example]
    except KeyError:
        raise AssertionError(f"example {example!r} has no expectations in labhost.SPECS: add them") from None


def copy_example(example: str, tmp_path: Path) -> Path:
    """A private copy of an example root (the state store is written into it)."""
    root = tmp_path / example
    shutil.copytree(EXAMPLES / example, root)
    return root


# --------------------------------------------------------------------------
# Running the product in the host namespace
# --------------------------------------------------------------------------


class Host:
    """The lab's host namespace with one alternate root."""

    def __init__(self, topo: Topology, root: Path) -> None:
        self.topo = topo
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / "run" / "ipmp" / "state.json"

    def ifconfig(self, *args: str) -> subprocess.CompletedProcess[str]:
        # SUNW_NO_MPATHD: ``group`` must not start in.mpathd here (as during a
        # Solaris boot, §6.2 step 1): a daemon would move addresses under the
        # test and outlive it inside the namespace.
        argv = ["env", f"IPMP_ROOT={self.root}", "SUNW_NO_MPATHD=1", str(BIN / "ifconfig"), *args]
        return self.topo.run(self.topo.host, argv, check=False)

    def ifconfig_ok(self, *args: str) -> str:
        proc = self.ifconfig(*args)
        assert proc.returncode == 0, f"ifconfig {' '.join(args)}: {proc.stderr}"
        assert proc.stderr == ""
        return proc.stdout

    def boot(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["env", "SUNW_NO_MPATHD=1", str(BIN / "ipmp-boot"), "-R", str(self.root), *args]
        return self.topo.run(self.topo.host, argv, check=False)

    def boot_ok(self) -> subprocess.CompletedProcess[str]:
        proc = self.boot()
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        return proc

    def python(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.topo.run(self.topo.host, [sys.executable, "-c", script, *args], check=False)

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        return self.topo.run(self.topo.host, ["sh", "-c", script], check=False)

    # ---------------------------------------------------------- reading
    def ip_json(self, *args: str) -> Any:
        return self.topo.ip_json(self.topo.host, *args)

    def ifindex(self, nic: str) -> int:
        return int(self.ip_json("link", "show", "dev", nic)[0]["ifindex"])

    def table(self, nic: str) -> str:
        return str(TABLE_BASE + self.ifindex(nic))

    def addresses4(self, nic: str) -> list[dict[str, Any]]:
        """The IPv4 addresses of ``nic`` in kernel order, reduced to what the recipe decides."""
        out = []
        for link in self.ip_json("-4", "addr", "show", "dev", nic):
            for a in link.get("addr_info", ()):
                out.append(
                    {
                        "local": a["local"],
                        "prefixlen": a["prefixlen"],
                        "broadcast": a.get("broadcast"),
                        "label": a.get("label"),
                        "scope": a.get("scope"),
                        "secondary": bool(a.get("secondary")),
                        "deprecated": bool(a.get("deprecated")),
                        "noprefixroute": bool(a.get("noprefixroute")),
                    }
                )
        return out

    def addresses6(self, nic: str) -> list[dict[str, Any]]:
        """The IPv6 addresses of ``nic`` (the kernel's link-local too), sorted by address."""
        out = []
        for link in self.ip_json("-6", "addr", "show", "dev", nic):
            for a in link.get("addr_info", ()):
                out.append(
                    {
                        "local": a["local"],
                        "prefixlen": a["prefixlen"],
                        "scope": a.get("scope"),
                        "deprecated": bool(a.get("deprecated")),
                        "noprefixroute": bool(a.get("noprefixroute")),
                        "nodad": bool(a.get("nodad")),
                    }
                )
        return sorted(out, key=lambda d: str(d["local"]))

    def rules(self, family: str = "-4") -> set[tuple[int, str, str]]:
        """``(pref, from, table)`` of the toolkit's rules (protocol 73)."""
        return {
            (r["priority"], r["src"], r["table"])
            for r in self.ip_json(family, "rule", "show")
            if r.get("protocol") == PROTO
        }

    def routes(self, family: str = "-4") -> set[tuple[str, str, str, str | None, str | None, int | None]]:
        """``(table, dst, dev, gateway, prefsrc, metric)`` of the toolkit's routes, every table."""
        return {
            (
                r.get("table", "main"),
                r["dst"],
                r["dev"],
                r.get("gateway"),
                r.get("prefsrc"),
                r.get("metric"),
            )
            for r in self.ip_json(family, "route", "show", "table", "all")
            if r.get("protocol") == PROTO
        }

    def sysctls(self) -> dict[str, str]:
        """Every readable value under net/ipv{4,6}/conf (all, default, each link)."""
        proc = self.topo.run(
            self.topo.host,
            ["grep", "-rs", "", "/proc/sys/net/ipv4/conf", "/proc/sys/net/ipv6/conf"],
            check=False,
        )
        values: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            path, _, value = line.partition(":")
            values[path.removeprefix("/proc/sys/")] = value
        assert values, proc.stderr
        return values

    def snapshot(self) -> dict[str, Any]:
        """Links, addresses, rules, routes (every table, both families) and conf sysctls."""
        return {
            "links": [_link(link) for link in self.ip_json("addr", "show")],
            "rules4": self.ip_json("-4", "rule", "show"),
            "rules6": self.ip_json("-6", "rule", "show"),
            "routes4": [_route(r) for r in self.ip_json("-4", "route", "show", "table", "all")],
            "routes6": [
                _route(r) for r in self.ip_json("-6", "route", "show", "table", "all") if not _kernel_ll(r)
            ],
            "sysctls": self.sysctls(),
        }

    def nic_view(self, nic: str) -> dict[str, Any]:
        """The part of ``snapshot`` that belongs to one NIC."""
        snap = self.snapshot()
        table = self.table(nic)
        return {
            "link": [link for link in snap["links"] if link["ifname"] == nic],
            "rules": [r for key in ("rules4", "rules6") for r in snap[key] if r.get("table") == table],
            "routes": [r for key in ("routes4", "routes6") for r in snap[key] if r.get("dev") == nic],
            "sysctls": {
                k: v for k, v in snap["sysctls"].items() if f"/conf/{nic}/" in k and not _propagated(k)
            },
        }


def _propagated(key: str) -> bool:
    """A per-NIC sysctl the kernel rewrites on every link when its ``all`` value is written.

    (Writing net.ipv6.conf.all.ignore_routes_with_linkdown copies the value into
    each link's conf, configured or not; the recipe no longer writes it, so this
    only keeps the comparison loose for a host where someone else does.)
    """
    return key.startswith("net/ipv6/conf/") and key.endswith("/ignore_routes_with_linkdown")


#: Fields that change with time alone, never with a configuration.
_VOLATILE = {"valid_life_time", "preferred_life_time", "tentative", "expires"}


def _link(link: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in link.items() if k != "addr_info"}
    out["addr_info"] = [{k: v for k, v in a.items() if k not in _VOLATILE} for a in link.get("addr_info", ())]
    return out


def _route(route: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in route.items() if k not in _VOLATILE}


def _kernel_ll(route: dict[str, Any]) -> bool:
    """The kernel's local route for an IPv6 link-local: it appears when DAD ends, on its own."""
    dst = str(route.get("dst", ""))
    return route.get("type") == "local" and dst.lower().startswith("fe80:")


# --------------------------------------------------------------------------
# Expectations derived from SPECS
# --------------------------------------------------------------------------


def expected_addresses(addrs: Iterable[Addr], nic: str) -> list[dict[str, Any]]:
    """What ``Host.addresses4`` must say (IPv4 only)."""
    mine = sorted((a for a in addrs if a.nic == nic and a.version == 4), key=lambda a: a.unit)
    return [
        {
            "local": a.ip,
            "prefixlen": a.prefixlen,
            "broadcast": a.broadcast,
            "label": a.label,
            "scope": "global",
            # Unit 0 is added first, so it is the kernel's primary.
            "secondary": i > 0,
            "deprecated": a.test,
            "noprefixroute": True,
        }
        for i, a in enumerate(mine)
    ]


def expected_addresses6(addrs: Iterable[Addr], nic: str) -> list[dict[str, Any]]:
    """What ``Host.addresses6`` must say: the kernel's link-local and the added addresses (nodad)."""
    mine = [a for a in addrs if a.nic == nic and a.version == 6]
    return sorted(
        (
            {
                "local": a.ip,
                "prefixlen": a.prefixlen,
                "scope": "link" if a.link_local else "global",
                "deprecated": False,
                "noprefixroute": not a.link_local,
                "nodad": not a.link_local,
            }
            for a in mine
        ),
        key=lambda d: str(d["local"]),
    )


def expected_rules(host: Host, addrs: Iterable[Addr], version: int = 4) -> set[tuple[int, str, str]]:
    """The rules of one family; the kernel's link-local gets none (probes are pinned to their NIC)."""
    return {
        (PREF_TEST if a.test else PREF_DATA, a.ip, host.table(a.nic))
        for a in addrs
        if a.version == version and not a.link_local
    }


#: The IPv6 subnet of the examples, and the metric the kernel shows for an
#: IPv6 route added with none.
SUBNET6 = "2001:db8::/64"
METRIC6_DEFAULT = 1024


def expected_routes(
    host: Host, addrs: tuple[Addr, ...], version: int = 4
) -> set[tuple[str, str, str, str | None, str | None, int | None]]:
    """The routes of one family (the examples' IPv6 has no default router: Solaris'
    defaultrouter is IPv4 only)."""
    routes: set[tuple[str, str, str, str | None, str | None, int | None]] = set()
    mine = [a for a in addrs if a.version == version and not a.link_local]
    for nic in sorted({a.nic for a in mine}):
        table = host.table(nic)
        data = sorted((a for a in mine if a.nic == nic and not a.test), key=lambda a: a.unit)
        metric = METRIC_BASE + host.ifindex(nic)
        if version == 4:
            routes.add((table, "192.0.2.0/24", nic, None, None, None))
            routes.add((table, "default", nic, ROUTER, None, None))
            if data:
                routes.add(("main", "192.0.2.0/24", nic, None, data[0].ip, metric))
                routes.add(("main", "default", nic, ROUTER, data[0].ip, metric))
        else:
            routes.add((table, SUBNET6, nic, None, None, METRIC6_DEFAULT))
            if data:
                routes.add(("main", SUBNET6, nic, None, data[0].ip, metric))
    return routes


def configuring_line(nics: Iterable[str]) -> str:
    return f"configuring IPv4 interfaces: {' '.join(nics)}.\n"


def configuring_lines(host: Host) -> str:
    """ipmp-boot's console lines: IPv4 files first, then IPv6 (§6.2), NICs in index order."""
    out = ""
    for word, pattern in (("IPv4", "hostname.{}"), ("IPv6", "hostname6.{}")):
        nics = [nic for nic in host.topo.nics if (host.root / "etc" / pattern.format(nic)).is_file()]
        if nics:
            out += f"configuring {word} interfaces: {' '.join(nics)}.\n"
    return out


# --------------------------------------------------------------------------
# Source address selection
# --------------------------------------------------------------------------

#: Unbound UDP sockets: connect() picks the source and sends nothing.
SOURCE_SCRIPT = """
import socket, sys
for dst in sys.argv[1:]:
    with socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((dst, 9))
        print(dst, s.getsockname()[0])
"""


def chosen_sources(host: Host, *destinations: str) -> dict[str, str]:
    proc = host.python(SOURCE_SCRIPT, *destinations)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split() for line in proc.stdout.splitlines())


# --------------------------------------------------------------------------
# Kernel events: proof that a command changed nothing at all
# --------------------------------------------------------------------------

#: Subscribes to link, address, route and rule events of both families and
#: prints one JSON line per event; "ready" once subscribed.
_WATCH_SCRIPT = r"""
import json
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_IPV6_RULE, RTMGRP_LINK,
)
GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE
          | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE)
KEYS = ("IFLA_IFNAME", "IFA_LABEL", "IFA_ADDRESS", "RTA_DST", "RTA_TABLE", "RTA_GATEWAY",
        "RTA_PREFSRC", "RTA_PRIORITY", "FRA_SRC", "FRA_TABLE", "FRA_PRIORITY")
ipr = IPRoute(groups=GROUPS)
ipr.bind()
print(json.dumps({"event": "ready"}), flush=True)
while True:
    for msg in ipr.get():
        doc = {"event": msg.get("event"), "family": msg.get("family")}
        for key in KEYS:
            value = msg.get(key)
            if value is not None:
                doc[key] = str(value)
        print(json.dumps(doc), flush=True)
"""

#: A rule nobody else makes; seeing it come back means every earlier event was read.
_MARKER = ("pref", "31999", "from", "198.51.100.77", "lookup", "31999")


def _is_link_local_noise(event: dict[str, Any]) -> bool:
    """Events the kernel makes by itself when IPv6 DAD ends on a link-local address."""
    for key in ("IFA_ADDRESS", "RTA_DST"):
        value = event.get(key)
        if value is None:
            continue
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            continue
        if addr.version == 6 and addr.is_link_local:
            return True
    return False


def kernel_events_during(
    host: Host, action: Callable[[], None], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Run ``action`` and return the rtnetlink events it caused in the host namespace.

    Starts a subscriber, waits for its "ready", runs ``action``, then adds a
    marker rule and reads until the marker's event arrives (netlink keeps the
    order), so no sleep decides what counts.  Kernel-made IPv6 link-local
    events are left out.
    """
    proc = host.topo.popen(
        host.topo.host,
        [sys.executable, "-c", _WATCH_SCRIPT],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def next_event() -> dict[str, Any]:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event from the kernel watcher in time") from None
        if line is None:
            assert proc.stderr is not None
            raise AssertionError(f"kernel watcher exited: {proc.stderr.read().decode(errors='replace')}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    events: list[dict[str, Any]] = []
    marker_added = False
    try:
        assert next_event() == {"event": "ready"}
        action()
        host.topo.ip(host.topo.host, "rule", "add", *_MARKER)
        marker_added = True
        while True:
            event = next_event()
            if event.get("FRA_SRC") == _MARKER[3]:
                break
            if not _is_link_local_noise(event):
                events.append(event)
    finally:
        if marker_added:
            host.topo.ip(host.topo.host, "rule", "del", *_MARKER)
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return events
