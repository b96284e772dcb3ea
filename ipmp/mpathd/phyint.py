"""The daemon's records: phyints and groups, their states and transitions, the timing constants.

A *phyint* is a NIC in.mpathd tracks (``Phyint``); its state (``State``)
changes only along ``TRANSITIONS``, through ``Core._set_state`` (the
machine's ``phyint_chstate``).  A *group* (``Group``) carries its failure
detection time and whether all its members failed together.  The constants
keep the illumos names of mpd_tables.h / mpd_defs.h, with why they are what
they are.

Pure module: plain records, no I/O, no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ipmp.model import Family, Interface, Logical
from ipmp.mpathd.probe import NUM_PROBE_FAILS, Instance

__all__ = [
    "EXCEPTION_FACTOR",
    "FDT_DIVISOR",
    "LINK_UP_PERMIN",
    "LINK_UP_WINDOW",
    "LOWER_FDT_TRIGGER",
    "MIN_SETTLING_TIME",
    "NEXT_FDT_MULTIPLE",
    "TRANSITIONS",
    "Group",
    "Phyint",
    "State",
    "Timing",
    "of_group",
    "select_test_address",
]

#: Probe interval = FDT / (NUM_PROBE_FAILS + 2): with a probe sent in the
#: second half of each interval, probe n-2 is overdue when probe n goes out,
#: so five losses plus two in flight fit in one FDT (mpd_main.c).
FDT_DIVISOR = NUM_PROBE_FAILS + 2
#: After raising the FDT, do not lower it for this long (s).
MIN_SETTLING_TIME = 60.0
#: The FDT is raised and lowered by this factor.
NEXT_FDT_MULTIPLE = 2
#: Lower the FDT when every CRTT is below interval / LOWER_FDT_TRIGGER.
LOWER_FDT_TRIGGER = 4
#: A slow target is an exception when the others are below interval / this.
EXCEPTION_FACTOR = 2
#: Link-flap damping: more link-ups than this in a minute hold the repair.
LINK_UP_PERMIN = 2
LINK_UP_WINDOW = 60.0


@dataclass(frozen=True)
class Timing:
    """Constants Solaris hard-codes; tests may shorten them (never by default)."""

    #: FAILURE_DETECTION_QP: no probe-based failure for 40 s after an instance
    #: appears (spanning-tree quiet time on switch ports).
    quiet_period: float = 40.0
    #: IF_SCAN_INTERVAL: full rescan of the kernel every 20 s.
    scan_interval: float = 20.0
    #: TESTADDR_CONF_TIME: wait before complaining about a missing test address.
    testaddr_conf_time: float = 20.0


class State(enum.Enum):
    """Phyint states (``pi_state``); NOTARGETS is reported, not kept (see ``reported_state``)."""

    RUNNING = "running"
    FAILED = "failed"
    OFFLINE = "offline"


#: The only phyint state changes there are.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset({
    (State.RUNNING, State.FAILED),  # NIC or group failure
    (State.FAILED, State.RUNNING),  # repair
    (State.RUNNING, State.OFFLINE),  # if_mpadm -d; a duplicate hardware address
    (State.FAILED, State.OFFLINE),  # if_mpadm -d of a failed NIC in a failed group; a duplicate
    (State.OFFLINE, State.RUNNING),  # if_mpadm -r, link up; a hardware address unique again
    (State.OFFLINE, State.FAILED),  # if_mpadm -r, link down; unique again with the link down
})


# -- state --------------------------------------------------------------------------


@dataclass
class Phyint:
    name: str
    group: str
    state: State
    link_up: bool
    since: float
    instances: dict[Family, Instance] = field(default_factory=dict)
    link_ups: list[float] = field(default_factory=list)
    repair_hold_until: float | None = None
    flap_logged: bool = False
    no_test_logged: bool = False
    #: When the NIC appeared: TESTADDR_CONF_TIME counts from here.
    appeared: float = 0.0
    #: Families whose test address duplicates another member's (§2.3).
    duplicate: set[Family] = field(default_factory=set)
    #: Families the group uses that this member lacks (logged once).
    inhomogeneous: set[Family] = field(default_factory=set)
    #: The link's hardware address as last read (``pi_hwaddr``): a change is
    #: judged against the group (``hwaddr``, illumos ``phyint_link_notify``).
    hwaddr: str | None = None
    #: OFFLINE because another member has its hardware address
    #: (``pi_hwaddrdup``, ``ipmpstat -i`` FLAGS ``h``), not by the admin.
    hwaddrdup: bool = False


@dataclass
class Group:
    name: str
    fdt_ms: int
    failed: bool = False
    #: After a group failure ends, the other members get one FDT to answer
    #: their probes again before invariant 2 moves their addresses away:
    #: members come back a little apart (neighbour entries, queued probes).
    settling_until: float | None = None
    #: Probe interval in seconds, computed in whole ms as Solaris does (1000
    #: -> 142 ms).  Kept with ``fdt_ms`` (``__setattr__``), which changes
    #: rarely, rather than computed at each of the reads every probe makes.
    interval: float = field(init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "fdt_ms":
            assert isinstance(value, int)
            object.__setattr__(self, "interval", (value // FDT_DIVISOR) / 1000.0)


def of_group(name: str, group: str) -> str:
    return f"{name} of group {group}" if group else name


def select_test_address(itf: Interface, family: Family) -> Logical | None:
    """§2.3: NOFAILOVER and UP; IPv4 prefers DEPRECATED, IPv6 must be link-local.

    The IPv6 test address is the link-local marked ``-failover`` (§1); on
    Linux the kernel owns it and its NOFAILOVER lives in the state store on
    inet6 unit 0.  One whose DAD has not succeeded is skipped until it has.
    """
    best: Logical | None = None
    acceptable: Logical | None = None
    for lg in itf.logicals_of(family):
        if not (lg.nofailover and lg.up and lg.address is not None) or lg.tentative:
            continue  # a link-local still in DAD cannot be bound yet
        ip = lg.address.ip
        if family is Family.INET:
            if int(ip) == 0:
                continue
            if lg.deprecated and best is None:
                best = lg
            acceptable = lg
        else:
            if not ip.is_link_local:
                continue  # only link-local IPv6 addresses are test addresses
            if best is None:
                best = lg
    return best or acceptable
