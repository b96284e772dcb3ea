"""The rows of ``ipadm show-if``, ``show-addr``, ``show-ifprop`` and of the bare ``ipadm`` listing.

Each row is a mapping of field name to text, every field of its table
(``ipmp.admin.ipadm_show`` selects the fields and lays the table out), made
from the Solaris view of the host (a ``Config``, the same one ``ifconfig
-a`` prints) and the persistent configuration (an ``IpadmDb``,
``/etc/ipadm/ipadm.conf``).  Flag letters are those of the Solaris 11
``ipadm.c`` (``print_si_cb``, ``print_sa_cb``); the bare listing of Solaris
11.3 and 11.4 (ipadm(8),
https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html) has an
interface's addresses indented under it.

What the model maps to (the Solaris 11 model: ``ipmp.model``):

* An IPMP interface is CLASS ``ipmp``; its STATE is ``failed`` without a
  usable member (no member, or none RUNNING), ``down`` with members but no
  UP data address, else ``ok``.  OVER lists its members in the order they
  were added (the persistent configuration's order, then the others).
* Its data addresses are shown on it (ADDROBJ ``ipmp0/v4``, or ``ipmp0/?``
  when made by ``ifconfig``) wherever Linux holds them: a member's logical
  with ``ipmp_unit`` set, or a logical of the IPMP interface's record.
* A NIC is ``offline``, ``failed`` (FAILED, or not RUNNING), ``down`` (no UP
  address of its own; a group member counts as UP on ``0.0.0.0``, as
  Solaris 11 brings every IPMP member up), else ``ok``; ACTIVE is ``yes``
  when ``ok`` and not INACTIVE.
* An interface or address only in the persistent configuration is
  ``disabled``.

Pure module: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ipmp.config.ipadm_options import PROG
from ipmp.config.ipadm_syntax import IpadmCommand, IpadmError
from ipmp.model import Family

if TYPE_CHECKING:
    from ipmp.config.ipadm_db import IpadmDb, PersistentInterface
    from ipmp.model import Config, Interface, Logical

__all__ = [
    "addr_rows",
    "if_rows",
    "ifprop_rows",
    "listing_rows",
]

#: ``print_si_cb`` ``intf_cflags``, in order: (letter, name of the test below).
_CURRENT_LETTERS = "bm46pvsliVaZ"
#: ``print_si_cb`` ``intf_pflags``.
_PERSISTENT_LETTERS = "46sl"

#: The interface properties this subset knows, in table order: (name,
#: PERM, DEFAULT, POSSIBLE), all of protocol ``ip``.  ``standby`` is
#: Solaris 11's (ipadm(8) "standby (ip)": on, off); ``group`` names the
#: IPMP interface a member is under (set by add-ipmp/remove-ipmp, or
#: ``set-ifprop -p group=ipmp0``); ``allow-xprobe`` is Solaris 11.4's, of
#: the IPMP interface only (ipadm(8): on, off, inherit; default inherit).
_IFPROPS = (("allow-xprobe", "rw", "inherit", "on,off,inherit"), ("group", "rw", "", ""),
            ("standby", "rw", "off", "on,off"))
_IFPROP_NAMES = tuple(name for name, *_ in _IFPROPS)
#: The properties of the IPMP interface class alone: other interfaces have no row of them.
_IPMP_ONLY = frozenset({"allow-xprobe"})

#: ``ipadm_status2str`` texts this module reports.
_NO_SUCH_IF = "No such interface"
_UNKNOWN_PROP = "Unknown property"
_NOT_SUPPORTED = "Operation not supported"


# -- what the model says ------------------------------------------------------------------


def _displayed(config: Config) -> tuple[Interface, ...]:
    """The IP interfaces ipadm knows: plumbed NICs and the IPMP interfaces."""
    return tuple(i for i in config.interfaces if i.ipmp or i.plumbed)


def _is_up(itf: Interface) -> bool:
    # Kernel-made link-locals are Linux's, not an ``up`` of the admin's; a
    # group member is UP on 0.0.0.0 (Solaris 11 ``ipadm add-ipmp``).
    if itf.group and not itf.ipmp:
        return True
    return any(lg.up and not lg.kernel_owned for lg in itf.logicals)


def _data_addresses(config: Config, ipmpif: Interface) -> list[tuple[Interface, Logical]]:
    """The IPMP interface's data addresses: on its record, or held by a member."""
    found = [(ipmpif, lg) for lg in ipmpif.logicals if lg.address is not None]
    for member in config.group_members(ipmpif.group):
        found.extend((member, lg) for lg in member.logicals if lg.ipmp_unit is not None)
    return found


def _if_state(config: Config, itf: Interface) -> str:
    if itf.ipmp:
        if not config.group_members(itf.group) or not itf.running:
            return "failed"
        if not any(lg.up for _, lg in _data_addresses(config, itf)):
            return "down"
        return "ok"
    if itf.offline:
        return "offline"
    if itf.failed or not itf.running:
        return "failed"
    return "ok" if _is_up(itf) else "down"


def _letters(letters: str, present: set[str]) -> str:
    # flags2str(is_bits): each letter where its bit is set, '-' where not.
    return "".join(c if c in present else "-" for c in letters)


def _current(itf: Interface) -> str:
    flags: set[str] = set()
    if (Family.INET in itf.plumbed and not (itf.loopback or itf.pointopoint)) or itf.ipmp:
        flags.add("b")
    if itf.multicast or itf.loopback or itf.ipmp:
        flags.add("m")  # lo0 is ILLF_MULTICAST on Solaris (as ifconfig -a shows it)
    if Family.INET in itf.plumbed:
        flags.add("4")
    if Family.INET6 in itf.plumbed:
        flags.add("6")
    if itf.pointopoint:
        flags.add("p")
    if itf.loopback:
        flags.add("v")  # lo0 is IFF_VIRTUAL on Solaris
    if itf.standby:
        flags.add("s")
    if itf.group and not itf.ipmp:
        flags.add("l")
    if itf.inactive:
        flags.add("i")
    return _letters(_CURRENT_LETTERS, flags)


def _persistent(name: str, db: IpadmDb) -> str:
    flags: set[str] = set()
    record = db.interface(name)
    if record is not None:
        flags.update("4" if f is Family.INET else "6" for f in record.families)
        if record.property("standby") == "on":
            flags.add("s")
    if any(name in other.members for other in db.interfaces):
        flags.add("l")
    return _letters(_PERSISTENT_LETTERS, flags)


def _over(config: Config, itf: Interface, db: IpadmDb) -> str:
    members = [m.name for m in config.group_members(itf.group)]
    record = db.interface(itf.name)
    added = [m for m in record.members if m in members] if record else []
    return " ".join(added + [m for m in members if m not in added])


def _class(itf: Interface) -> str:
    return "loopback" if itf.loopback else "ipmp" if itf.ipmp else "ip"


def _disabled(config: Config, db: IpadmDb) -> tuple[PersistentInterface, ...]:
    # A NIC after ``disable-if -t`` is still a Linux link, only unplumbed.
    shown = {i.name for i in _displayed(config)}
    return tuple(p for p in db.interfaces if p.name not in shown)


def _if_unknown() -> IpadmError:
    return IpadmError(f"{PROG}: cannot get information for interface(s): {_NO_SUCH_IF}")


def if_rows(config: Config, db: IpadmDb, ifname: str = "") -> list[dict[str, str]]:
    """``show-if`` rows (every field), for ``ifname`` or every interface.

    Raises:
        IpadmError: ``ifname`` is no interface, active or persistent.
    """
    rows: list[dict[str, str]] = []
    for itf in _displayed(config):
        state = _if_state(config, itf)
        rows.append({
            "IFNAME": itf.name, "CLASS": _class(itf), "STATE": state,
            "ACTIVE": "yes" if state == "ok" and not itf.inactive else "no",
            "CURRENT": _current(itf), "PERSISTENT": _persistent(itf.name, db),
            "OVER": _over(config, itf, db) if itf.ipmp else "",
        })
    for record in _disabled(config, db):
        rows.append({
            "IFNAME": record.name, "CLASS": "ipmp" if record.ipmp else "ip", "STATE": "disabled",
            "ACTIVE": "no", "CURRENT": _letters(_CURRENT_LETTERS, set()),
            "PERSISTENT": _persistent(record.name, db), "OVER": " ".join(record.members),
        })
    if ifname:
        rows = [r for r in rows if r["IFNAME"] == ifname]
        if not rows:
            raise _if_unknown()
    return rows


# -- addresses ------------------------------------------------------------------------------


class _Addr(NamedTuple):
    ifname: str
    family: Family
    unit: int
    row: dict[str, str]


def _addr_text(lg: Logical) -> str:
    assert lg.address is not None
    if lg.destination is not None:
        return f"{lg.address.ip}->{lg.destination}"
    plen = lg.address.network.prefixlen
    return f"{lg.address.ip}/{plen}" if plen > 0 else str(lg.address.ip)


def _addr_state(lg: Logical, usable: bool) -> str:
    # libipadm's address states, most telling first.
    if not lg.up:
        return "down"
    if lg.tentative:
        return "tentative"
    return "ok" if usable else "inaccessible"


def _addrobj(shown_on: str, lg: Logical, loopback: bool) -> str:
    if lg.addrobj:
        return lg.addrobj
    if loopback and lg.unit == 0:
        # Solaris 11 makes the loopback's addresses with ipadm at boot
        # (svc:/network/loopback): lo0/v4 and lo0/v6; scripts look for them.
        return f"{shown_on}/v{lg.family.value}"
    return f"{shown_on}/?"  # print_sa_cb: an address ipadm did not make


def _addr_row(shown_on: str, lg: Logical, usable: bool, db: IpadmDb,
              loopback: bool = False) -> dict[str, str]:
    addrobj = _addrobj(shown_on, lg, loopback)
    persistent = db.address(lg.addrobj) is not None if lg.addrobj else False
    current = _letters("Uuptd", ({"U"} if lg.up else set()) | ({"d"} if lg.deprecated else set()))
    return {
        "ADDROBJ": addrobj, "TYPE": "addrconf" if lg.kernel_owned else "static",
        "STATE": _addr_state(lg, usable), "CURRENT": current,
        "PERSISTENT": _letters("Upd", {"U"} if persistent else set()), "ADDR": _addr_text(lg),
    }


def _addresses(config: Config, db: IpadmDb) -> list[_Addr]:
    """Every address, each on the interface Solaris shows it on, then the disabled ones."""
    found: list[_Addr] = []
    for itf in _displayed(config):
        if itf.ipmp:
            for holder, lg in _data_addresses(config, itf):
                unit = lg.unit if holder is itf else (lg.ipmp_unit or 0)
                found.append(_Addr(itf.name, lg.family, unit, _addr_row(itf.name, lg, itf.running, db)))
            continue
        usable = itf.running and not (itf.failed or itf.offline)
        for lg in itf.logicals:
            if lg.address is None or lg.ipmp_unit is not None or lg.address.ip.is_unspecified:
                continue
            if lg.kernel_owned and not lg.up:
                # Linux's own link-local, never brought up: Solaris 11 plumbs
                # IPv6 with NOLINKLOCAL (libipadm i_ipadm_plumb_if), so ipadm
                # shows no address there until one is created.
                continue
            row = _addr_row(itf.name, lg, usable, db, itf.loopback)
            found.append(_Addr(itf.name, lg.family, lg.unit, row))
    shown = {a.row["ADDROBJ"] for a in found}
    order = {itf.name: n for n, itf in enumerate(_displayed(config))}
    # getifaddrs: every IPv4 logical interface, then every IPv6 one.
    found.sort(key=lambda a: (a.family, order.get(a.ifname, 0), a.unit))
    for p in db.addresses:
        if p.addrobj not in shown:
            found.append(_Addr(p.ifname, p.family, 0, {
                "ADDROBJ": p.addrobj, "TYPE": "static", "STATE": "disabled", "CURRENT": "-----",
                "PERSISTENT": "U--", "ADDR": str(p.address)}))
    return found


def addr_rows(config: Config, db: IpadmDb, operand: str = "") -> list[dict[str, str]]:
    """``show-addr`` rows: every address, those of one interface (``net0/``,
    ``net0``), or one address object.

    Raises:
        IpadmError: no such interface or address object (``do_show_addr``).
    """
    found = _addresses(config, db)
    if not operand:
        return [a.row for a in found]
    ifname, slash, aobj = operand.partition("/")
    if slash and aobj:
        rows = [a.row for a in found if a.row["ADDROBJ"] == operand]
        if not rows:
            raise IpadmError(f"{PROG}: address object not found")
        return rows
    if config.get(ifname) is None and db.interface(ifname) is None:
        raise IpadmError(f"{PROG}: cannot get address information: {_NO_SUCH_IF}")
    return [a.row for a in found if a.ifname == ifname]


# -- interface properties -----------------------------------------------------------------------


def _ifprop_values(config: Config, db: IpadmDb, ifname: str, prop: str) -> tuple[str, str]:
    """(CURRENT, PERSISTENT) of ``prop`` on ``ifname``."""
    itf = config.get(ifname)
    record = db.interface(ifname)
    if prop == "allow-xprobe":
        current = "" if itf is None else itf.allow_xprobe
        return current, (record.property(prop) or "") if record else ""
    if prop == "standby":
        current = "" if itf is None else ("on" if itf.standby else "off")
        return current, (record.property("standby") or "") if record else ""
    current = ""
    if itf is not None and itf.group and not itf.ipmp:
        ipmpif = config.ipmp_interface(itf.group)
        current = ipmpif.name if ipmpif is not None else itf.group
    persistent = next((p.name for p in db.interfaces if ifname in p.members), "")
    return current, persistent


def ifprop_rows(config: Config, db: IpadmDb, command: IpadmCommand) -> tuple[list[dict[str, str]], list[str]]:
    """``show-ifprop`` rows, and the warnings (``ipadm: warning: ...``) for
    properties that could not be read.

    Raises:
        IpadmError: the operand names no interface.
    """
    names = [r["IFNAME"] for r in if_rows(config, db)]
    if command.operand:
        if command.operand not in names:
            raise IpadmError(f"{PROG}: no such object '{command.operand}': {_NO_SUCH_IF}")
        names = [command.operand]
    protocol = command.protocol or "ip"
    wanted = [name for name, _ in command.properties] or (list(_IFPROP_NAMES) if protocol == "ip" else [])
    table = {name: (perm, default, possible) for name, perm, default, possible in _IFPROPS}
    rows: list[dict[str, str]] = []
    warnings: list[str] = []
    ipmpifs = {i.name for i in config.interfaces if i.ipmp} | {p.name for p in db.interfaces if p.ipmp}
    for ifname in names:
        for prop in wanted:
            if prop not in table or protocol != "ip":
                # print_prop: IPADM_PROP_UNKNOWN -> a warning, the exit status 1.
                warnings.append(f"{PROG}: warning: cannot get property '{prop}' for '{ifname}': "
                                f"{_UNKNOWN_PROP}")
                continue
            if prop in _IPMP_ONLY and ifname not in ipmpifs:
                # Not a property of this interface's class: asked for it by
                # name on this interface, the same warning shape
                # (IPADM_OP_NOTSUP); otherwise those without it have no row.
                if command.operand and command.properties:
                    warnings.append(f"{PROG}: warning: cannot get property '{prop}' for '{ifname}': "
                                    f"{_NOT_SUPPORTED}")
                continue
            perm, default, possible = table[prop]
            current, persistent = _ifprop_values(config, db, ifname, prop)
            rows.append({"IFNAME": ifname, "PROPERTY": prop, "PROTO": "ip", "PERM": perm,
                         "CURRENT": current, "PERSISTENT": persistent, "DEFAULT": default,
                         "POSSIBLE": possible})
    return rows, warnings


# -- the bare listing ---------------------------------------------------------------------------


def listing_rows(config: Config, db: IpadmDb) -> list[dict[str, str]]:
    """The bare ``ipadm`` listing: each interface, its addresses indented under it."""
    addresses = _addresses(config, db)
    rows: list[dict[str, str]] = []
    for row in if_rows(config, db):
        ifname = row["IFNAME"]
        itf = config.get(ifname)
        under = ""
        if itf is not None and itf.group and not itf.ipmp:
            ipmpif = config.ipmp_interface(itf.group)
            under = ipmpif.name if ipmpif is not None else ""
        rows.append({"NAME": ifname, "CLASS/TYPE": row["CLASS"], "STATE": row["STATE"],
                     "UNDER": under, "ADDR": ""})
        for a in addresses:
            if a.ifname == ifname:
                rows.append({"NAME": f"   {a.row['ADDROBJ']}", "CLASS/TYPE": a.row["TYPE"],
                             "STATE": a.row["STATE"], "UNDER": "", "ADDR": a.row["ADDR"]})
    return rows
