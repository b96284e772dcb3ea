"""What goes into a step of in.mpathd's state machine and what comes out.

``Event`` values are what the runtime saw (a kernel read, a link change, a
probe reply, a timer, an admin request, the outcome of an apply);
``Effect`` values are what the machine asks of the runtime (send a probe,
open or close a probe socket, log, reply, announce, apply a configuration,
tell that reported states changed).

Pure module: plain frozen dataclasses, no I/O.  The three that every probe
makes (``Tick``, ``SendProbe``, ``ProbeReplied``) are named tuples: as
immutable, and made three times faster than a frozen dataclass, whose
``__init__`` sets each field through ``object.__setattr__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import NamedTuple

from ipmp.model import Config, Family, IPAddress
from ipmp.mpathd.probe import ProbeKind

__all__ = [
    "AdminOffline",
    "AdminUndoOffline",
    "Announce",
    "CloseProbe",
    "Effect",
    "Event",
    "Execute",
    "Executed",
    "LinkChanged",
    "Log",
    "MemberState",
    "OpenProbe",
    "ProbeReplied",
    "ReplyTo",
    "Reported",
    "Resync",
    "SendProbe",
    "StateChanged",
    "Tick",
]

# -- events -----------------------------------------------------------------------


@dataclass(frozen=True)
class Resync:
    """A full read of the kernel and the state store, and the routers of the routing table.

    ``routers6`` are the IPv6 routers of the kernel's routing table with the
    interface each route leaves through (link-local next hops only).
    """

    now: float
    config: Config
    routers: tuple[IPAddress, ...] = ()
    routers6: tuple[tuple[str, IPv6Address], ...] = ()


@dataclass(frozen=True)
class LinkChanged:
    now: float
    ifname: str
    up: bool


class ProbeReplied(NamedTuple):
    """A decoded echo reply on ``ifname``'s probe socket for ``family``."""

    now: float
    ifname: str
    family: Family
    seq: int
    source: IPAddress
    rtt_ms: int
    kind: ProbeKind


class Tick(NamedTuple):
    now: float


@dataclass(frozen=True)
class AdminOffline:
    now: float
    ifname: str
    min_redundancy: int
    request_id: int


@dataclass(frozen=True)
class AdminUndoOffline:
    now: float
    ifname: str
    request_id: int


@dataclass(frozen=True)
class Executed:
    """The runtime's report on an ``Execute`` effect."""

    now: float
    ok: bool
    error: str = ""


Event = Resync | LinkChanged | ProbeReplied | Tick | AdminOffline | AdminUndoOffline | Executed

# -- effects ------------------------------------------------------------------------


class SendProbe(NamedTuple):
    ifname: str
    family: Family
    source: IPAddress
    target: IPAddress | None  # None: all-hosts multicast discovery
    seq: int
    kind: ProbeKind


@dataclass(frozen=True)
class OpenProbe:
    ifname: str
    family: Family
    source: IPAddress


@dataclass(frozen=True)
class CloseProbe:
    ifname: str
    family: Family


@dataclass(frozen=True)
class Log:
    level: str  # "err", "info" or "debug" (syslog LOG_ERR / LOG_INFO / LOG_DEBUG)
    message: str


@dataclass(frozen=True)
class ReplyTo:
    request_id: int
    mpathd_error: int = 0
    sys_error: int = 0


@dataclass(frozen=True)
class Announce:
    """Gratuitous ARP / unsolicited NA for addresses on a NIC (start-up; after moves the runtime does it)."""

    ifname: str
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class Execute:
    """Make the host match ``config`` for ``names`` (kernel and state store).

    ``success`` runs only when the apply succeeded, ``failure`` only when not.
    """

    config: Config
    names: tuple[str, ...]
    success: tuple[Effect, ...] = ()
    failure: tuple[Effect, ...] = ()


class MemberState(NamedTuple):
    """What is reported of a tracked interface, as the state events carry it (``events``).

    ``state``: ``ok``, ``failed``, ``offline`` or ``unknown`` (NOTARGETS);
    ``type``: ``normal`` or ``standby``; ``link``: ``up``/``down``;
    ``probe``: ``ok``, ``failed``, ``unknown`` or ``disabled``; ``active``:
    it carries data addresses now.
    """

    group: str
    state: str
    type: str
    link: str
    probe: str
    active: bool


@dataclass(frozen=True)
class Reported:
    """The reported states of the machine's groups and interfaces, as queries show them."""

    #: Named group (members only) -> ``ok``, ``degraded`` or ``failed``.
    groups: Mapping[str, str] = field(default_factory=dict)
    #: Tracked interface -> what is reported of it.
    members: Mapping[str, MemberState] = field(default_factory=dict)


@dataclass(frozen=True)
class StateChanged:
    """A step changed reported states: the facts of in.mpathd's IPMP sysevents (§2.11).

    in.mpathd's ``phyint_chstate`` sends the event itself; here the step's
    one way out (``Machine.step``) compares what it reports with what it
    reported last, so that every way a reported state moves (a state
    change, a link, a target found or lost, a rollback, a NIC come or gone)
    is told once, and a change undone within the step is not told at all.
    ``ipmp.mpathd.events.state_changes`` makes the published documents.
    """

    before: Reported
    after: Reported


Effect = SendProbe | OpenProbe | CloseProbe | Log | ReplyTo | Announce | Execute | StateChanged
