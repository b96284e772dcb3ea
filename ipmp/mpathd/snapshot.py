"""The daemon's answer to a query, typed: ``Snapshot`` and its records, and their JSON.

``Machine.snapshot()`` builds a ``Snapshot``; the control socket sends
``to_wire(snapshot)`` (the layout below, version ``SNAPSHOT_VERSION``);
``ipmpstat`` turns the JSON back into the same records with ``from_wire``.

Wire layout (JSON object)::

    {"v": 1, "fdt_ms": <user FDT>, "failback": <bool>,
     "groups": {<name>: {"state": "ok"|"degraded"|"failed", "fdt_ms": <int>, "members": [<if>...],
                         "interface": <IPMP interface or "">, "cast": <member or "">}},
     "interfaces": {<name>: {"group", "state", "type", "link", "probe", "active", "standby",
                             "inactive", "failed", "offline", "hwaddrdup",
                             "probes": {"inet"|"inet6": {"test_address", "targets", "mode", "crtt_ms"}}}},
     "addresses": [{"address", "family", "interface", "home", "group", "up"}...]}

The anonymous group (TRACK_INTERFACES_ONLY_WITH_GROUPS=no) is the group
named ``""``.  Addresses stay strings: a reader needs no ``ipaddress``.

``from_wire`` reads defensively: a missing or mistyped value reads as empty
(``""``, ``False``, nothing), never as an exception, so that a daemon of
another release still gives a table.  The version check is the caller's.

Pure module: no I/O.  Light on purpose: ``ipmpstat`` runs it at each start
and loads neither ``typing`` nor ``dataclasses`` (tests/unit/test_startup.py),
so the records are ``collections.namedtuple`` classes written in the
``typing.NamedTuple`` syntax (``NamedTuple`` below, also used by
``ipmp.admin.ipmpstat_rows``).
"""

from __future__ import annotations

from collections.abc import Mapping

# Type checkers see ``typing.NamedTuple`` (they treat any name
# ``TYPE_CHECKING`` as true), the interpreter the class syntax on
# ``collections.namedtuple``: ``typing`` (with ``contextlib`` and
# ``warnings``) was about a tenth of ``ipmpstat -i``'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple

    class _NamedTupleType(type):
        """``typing.NamedTuple``'s class syntax: the annotated names are the fields, in order.

        A field with a value has that default (only the last ones may);
        methods, properties and the docstring go on the namedtuple class.
        """

        def __new__(mcs, name, bases, namespace):
            if not bases:
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f in namespace for f in fields[: len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in fields and key not in ("__module__", "__qualname__", "__annotations__"):
                    setattr(cls, key, value)
            cls.__qualname__ = namespace["__qualname__"]
            return cls

    class NamedTuple(metaclass=_NamedTupleType):
        """The base the records name; they become ``collections.namedtuple`` classes."""

__all__ = [
    "SNAPSHOT_VERSION",
    "AddressState",
    "GroupState",
    "InterfaceState",
    "NamedTuple",
    "ProbeState",
    "Snapshot",
    "from_wire",
    "to_wire",
]

#: The layout version, the wire's ``"v"``.
SNAPSHOT_VERSION = 1


class ProbeState(NamedTuple):
    """One probing instance (an address family of an interface)."""

    test_address: str  # with its prefix length, "192.0.2.10/24"
    targets: tuple[str, ...]  # the active targets, in firing order
    mode: str  # "routes" or "multicast"
    crtt_ms: Mapping[str, int | None]  # target -> its CRTT, None before a sample


class InterfaceState(NamedTuple):
    """One tracked NIC (phyint).

    ``state``: ``ok``, ``failed``, ``offline``, or ``unknown`` (NOTARGETS,
    §2.7); ``probe``: ``ok``/``failed`` while probing, ``unknown`` without
    targets, ``disabled`` without a test address; ``active``: it carries
    data addresses now.
    """

    name: str
    group: str
    state: str
    type: str  # "normal" or "standby"
    link: str  # "up" or "down"
    probe: str
    active: bool
    standby: bool
    inactive: bool
    failed: bool
    offline: bool
    probes: Mapping[str, ProbeState]  # family word ("inet", "inet6") -> its instance
    #: OFFLINE because another member has its hardware address (Solaris 11,
    #: ``ipmpstat -i`` FLAGS ``h``); absent from an older daemon's reply: False.
    hwaddrdup: bool = False

    @property
    def usable(self) -> bool:
        """Could carry data now: the test behind the group state ``degraded``."""
        return (self.state in ("ok", "unknown") and self.link != "down"
                and not self.failed and not self.offline)

    @property
    def carries_data(self) -> bool:
        return self.active and self.usable


class GroupState(NamedTuple):
    """One group: ``ok`` when every member is usable, ``failed`` when none is, else ``degraded``."""

    name: str
    state: str
    fdt_ms: int | None  # the group's failure detection time (None: not on the wire)
    members: tuple[str, ...]  # by name
    #: Solaris 11: the group's IPMP interface (``ipmp0``), "" for a group of
    #: hostname files; absent from an older daemon's reply: "".
    interface: str = ""
    #: Solaris 11: the member nominated for the group's broadcast and
    #: multicast (illumos ``ipmp_illgrp_set_cast``), "" for none.
    cast: str = ""


class AddressState(NamedTuple):
    """One data address the daemon manages, where it is now."""

    address: str  # with its prefix length
    family: str  # "inet" or "inet6"
    interface: str  # the logical interface holding it now, "qfe1:2"
    home: str  # the NIC it belongs to (failback goes there); Solaris 11: its IPMP logical ("ipmp0:1")
    group: str
    up: bool


class Snapshot(NamedTuple):
    """The daemon's view for queries (``ipmpstat``, the event streams' starting point)."""

    fdt_ms: int  # the user's FAILURE_DETECTION_TIME
    failback: bool
    groups: Mapping[str, GroupState]  # by name, in the daemon's order
    interfaces: Mapping[str, InterfaceState]  # by name
    addresses: tuple[AddressState, ...]  # by holder, then logical unit


# -- to the wire -------------------------------------------------------------------


def to_wire(snapshot: Snapshot) -> dict[str, object]:
    """The JSON-ready document of ``snapshot`` (module doc), the query reply's ``data``."""
    groups = {name: {"state": g.state, "fdt_ms": g.fdt_ms, "members": list(g.members),
                     "interface": g.interface, "cast": g.cast}
              for name, g in snapshot.groups.items()}
    interfaces = {
        name: {
            "group": i.group, "state": i.state, "type": i.type, "link": i.link, "probe": i.probe,
            "active": i.active, "standby": i.standby, "inactive": i.inactive, "failed": i.failed,
            "offline": i.offline, "hwaddrdup": i.hwaddrdup,
            "probes": {family: {"test_address": p.test_address, "targets": list(p.targets),
                                "mode": p.mode, "crtt_ms": dict(p.crtt_ms)}
                       for family, p in i.probes.items()},
        }
        for name, i in snapshot.interfaces.items()
    }
    addresses = [{"address": a.address, "family": a.family, "interface": a.interface, "home": a.home,
                  "group": a.group, "up": a.up} for a in snapshot.addresses]
    return {"v": SNAPSHOT_VERSION, "fdt_ms": snapshot.fdt_ms, "failback": snapshot.failback,
            "groups": groups, "interfaces": interfaces, "addresses": addresses}


# -- from the wire, defensively ------------------------------------------------------


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _probe(doc: Mapping[str, object]) -> ProbeState:
    return ProbeState(test_address=_text(doc.get("test_address")), targets=_strings(doc.get("targets")),
                      mode=_text(doc.get("mode")),
                      crtt_ms={str(k): _int(v) for k, v in _map(doc.get("crtt_ms")).items()})


def _interface(name: str, doc: Mapping[str, object]) -> InterfaceState:
    return InterfaceState(
        name=name, group=_text(doc.get("group")), state=_text(doc.get("state")),
        type=_text(doc.get("type")), link=_text(doc.get("link")), probe=_text(doc.get("probe")),
        active=doc.get("active") is True, standby=doc.get("standby") is True,
        inactive=doc.get("inactive") is True, failed=doc.get("failed") is True,
        offline=doc.get("offline") is True, hwaddrdup=doc.get("hwaddrdup") is True,
        probes={str(family): _probe(_map(info)) for family, info in _map(doc.get("probes")).items()},
    )


def from_wire(doc: object) -> Snapshot:
    """The ``Snapshot`` a query reply's ``data`` carries (module doc: never raises)."""
    data = _map(doc)
    groups = {str(name): GroupState(name=str(name), state=_text(g.get("state")), fdt_ms=_int(g.get("fdt_ms")),
                                    members=_strings(g.get("members")), interface=_text(g.get("interface")),
                                    cast=_text(g.get("cast")))
              for name, raw in _map(data.get("groups")).items() for g in (_map(raw),)}
    interfaces = {str(name): _interface(str(name), _map(raw))
                  for name, raw in _map(data.get("interfaces")).items()}
    raw_addresses = data.get("addresses")
    addresses = tuple(
        AddressState(address=_text(a.get("address")), family=_text(a.get("family")),
                     interface=_text(a.get("interface")), home=_text(a.get("home")),
                     group=_text(a.get("group")), up=a.get("up") is True)
        for item in (raw_addresses if isinstance(raw_addresses, list) else ())
        if isinstance(item, Mapping) for a in (_map(item),)
    )
    return Snapshot(fdt_ms=_int(data.get("fdt_ms")) or 0, failback=data.get("failback") is True,
                    groups=groups, interfaces=interfaces, addresses=addresses)
