"""What a lab builds for a directory of boot files: its NICs and the router's and peer's addresses.

The files are evaluated with the product's own evaluator, so they mean the
same thing to the lab as to ``ipmp-boot``; the plan is a value, stored in
the lab's state file and read back by every later ``ipmp-lab`` command.
A Solaris 11 configuration (``etc/ipadm/ipadm.conf``, an ipadm script) is
read by :mod:`ipmp.lab.ipadmplan` and folded over the same view; a NIC
configured both ways is refused, as ``ipmp-boot`` refuses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ipmp.admin.bootfiles import boot_lines
from ipmp.errors import IpmpError
from ipmp.host.hostfiles import find_hostname_files
from ipmp.host.lookups import read_environment
from ipmp.lab.errors import LabError
from ipmp.lab.ipadmplan import fold, read_solaris11
from ipmp.model import Config, Family, Interface
from ipmp.mpathd.settings import parse_settings

__all__ = ["IpmpPlan", "NetworkPlan", "NicPlan", "plan_network"]


@dataclass(frozen=True)
class NicPlan:
    """One host NIC as its boot files configure it (addresses with prefix length)."""

    name: str
    group: str = ""
    standby: bool = False
    test_addresses: tuple[str, ...] = ()
    data_addresses: tuple[str, ...] = ()

    @property
    def has_test(self) -> bool:
        return bool(self.test_addresses)


@dataclass(frozen=True)
class IpmpPlan:
    """A Solaris 11 IPMP interface (``ipadm create-ipmp``): its group and its data addresses.

    The data addresses have no home NIC: the kernel binds each to an
    active member and re-binds it when members come and go (illumos
    ``ipmp.c``); which member holds one is read from the lab's kernel.
    """

    name: str
    group: str
    data_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkPlan:
    """What the lab builds for a directory of boot files.

    ``problems`` lists the files the lab could not make sense of; it still
    builds the network, and ``ipmp-boot`` then reports them precisely.
    """

    nics: tuple[NicPlan, ...]
    router4: str | None = None
    peer4: str | None = None
    router6: str | None = None
    peer6: str | None = None
    extra_router: tuple[str, ...] = ()
    extra_peer: tuple[str, ...] = ()
    router_from_files: bool = False
    fdt_ms: int = 10000
    failback: bool = True
    track_all: bool = False
    problems: tuple[str, ...] = ()
    #: Solaris 11: the IPMP interfaces, transitive probing, the ipadm script run at ``up``.
    ipmp: tuple[IpmpPlan, ...] = ()
    transitive: bool = False
    script: str = ""

    def nic(self, name: str) -> NicPlan:
        for nic in self.nics:
            if nic.name == name:
                return nic
        raise LabError(f"no NIC {name!r} in this lab (NICs: {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nics)

    def members(self, group: str) -> tuple[NicPlan, ...]:
        return tuple(n for n in self.nics if group and n.group == group)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.group for n in self.nics if n.group))

    def ipmp_interface(self, group: str) -> IpmpPlan | None:
        """The Solaris 11 IPMP interface of ``group``: its addresses are bound, not failed over."""
        return next((i for i in self.ipmp if group and i.group == group), None)

    def probed(self, nic: NicPlan) -> bool:
        """Whether probes watch ``nic``: a test address, or transitive probing in a group with none.

        Transitive probing is used only by a group without test addresses
        (in.mpathd(8), Solaris 11.4; ``ipmp.mpathd.transitive``).
        """
        if nic.has_test:
            return True
        return (self.transitive and bool(nic.group)
                and not any(m.has_test for m in self.members(nic.group)))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> NetworkPlan:
        nics = tuple(
            NicPlan(
                name=str(n["name"]),
                group=str(n["group"]),
                standby=bool(n["standby"]),
                test_addresses=tuple(n["test_addresses"]),
                data_addresses=tuple(n["data_addresses"]),
            )
            for n in doc["nics"]
        )
        ipmp = tuple(IpmpPlan(str(i["name"]), str(i["group"]), tuple(i["data_addresses"]))
                     for i in doc.get("ipmp", ()))
        rest = {k: v for k, v in doc.items() if k not in ("nics", "ipmp")}
        for key in ("extra_router", "extra_peer", "problems"):
            rest[key] = tuple(rest.get(key, ()))
        return cls(nics=nics, ipmp=ipmp, **rest)


def _free_addresses(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[Any], *, from_top: bool
) -> Iterator[Any]:
    """Host addresses of ``network`` not in ``used``, lowest or highest first (bounded scan)."""
    if network.num_addresses < 4:
        return  # /31, /32, /127, /128: no room for a router and a peer
    first = int(network.network_address) + 1
    last = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    candidates = range(last, first - 1, -1) if from_top else range(first, last + 1)
    for n, value in enumerate(candidates):
        if n > 4096:
            return
        addr = ipaddress.ip_address(value)
        if addr not in used:
            yield addr


def plan_network(source: Path, script: Path | None = None) -> NetworkPlan:
    """Read the boot files under ``source`` (an alternate root) and decide the network.

    * NICs: one per interface named by ``etc/hostname.<if>`` or
      ``etc/hostname6.<if>``, in file order; ``hostname.qfe0:1`` names qfe0;
      then those ``etc/ipadm/ipadm.conf`` or the ipadm script (``script``,
      else ``source/ipadm.sh``) plumb, in their order.  One NIC named by
      both kinds is refused: Solaris 11 has no hostname files, and
      ``ipmp-boot`` configures such a NIC neither way.
    * Every IPv4 subnet the files configure gets a router and a peer
      address.  The router's is ``defaultrouter`` where that is in the
      subnet, else the lowest free address; the peer's is the highest free
      one.  "Free" means not configured by the files, not in ``hosts`` and
      not a default router.  Same for global IPv6 subnets.
    * The files are evaluated with the product's own evaluator (they must
      mean the same thing to the lab as to ``ipmp-boot``); a file it rejects
      is noted in ``problems`` and left for ``ipmp-boot`` to report.

    Raises:
        LabError: no hostname files and no ipadm configuration; a NIC
            configured both ways; a script line ipadm refuses; unreadable
            hosts, netmasks or defaultrouter; a default router on none of
            the subnets.
    """
    s11 = read_solaris11(source, script)
    if not (source / "etc").is_dir() and s11 is None:
        raise LabError(f"{source}: no etc directory (expected {source}/etc/hostname.<if>, "
                       f"{source}/etc/ipadm/ipadm.conf or {source}/ipadm.sh)")
    files = find_hostname_files(source)
    if not files and s11 is None:
        raise LabError(f"{source}/etc: no hostname.<if> or hostname6.<if> files, no ipadm/ipadm.conf, "
                       "and no ipadm script")
    try:
        env = read_environment(source)
    except (IpmpError, OSError) as err:
        raise LabError(str(err)) from None
    try:
        settings, _ = parse_settings((source / "etc/default/mpathd").read_text(errors="replace"))
    except OSError:
        settings, _ = parse_settings("")

    names = list(dict.fromkeys(f.ifname.partition(":")[0] for f in files))
    if s11 is not None:
        both = [n for n in s11[0].nics if n in names]
        if both:
            raise LabError(
                f"{both[0]} is configured both by {source}/etc/hostname.{both[0]} (or hostname6) and by "
                f"ipadm ({s11[0].origin[both[0]]}): a NIC is configured one way or the other; "
                "remove one of the two")
    config = Config(tuple(Interface(name, index=i + 1) for i, name in enumerate(names)))
    problems: list[str] = []
    for name in names:
        mine = [(f.family, f.path) for f in files if f.ifname.partition(":")[0] == name]
        try:
            # Line by line, as ipmp-boot configures them: a bad line costs that line only.
            evaluated = boot_lines(config, name, mine, env)
        except (IpmpError, OSError) as err:
            problems.append(str(err))
            continue
        config = evaluated.config
        problems += [failed.message for failed in evaluated.failed]
    transitive = False
    if s11 is not None:
        config, transitive, more = fold(config, s11[0], s11[1], env)
        problems += more

    nics: list[NicPlan] = []
    subnets4: list[ipaddress.IPv4Network] = []
    subnets6: list[ipaddress.IPv6Network] = []
    used: set[Any] = {addr for _, addr in env.hosts} | set(env.defaultrouters)
    bound: dict[str, list[str]] = {}
    for itf in config.interfaces:
        tests: list[str] = []
        data: list[str] = []
        for lg in itf.logicals:
            if lg.family is Family.INET6 and lg.unit == 0 and lg.nofailover and lg.up:
                # hostname6 "-failover ... up": the kernel's link-local is the
                # test address (solaris-ipmp.md §2.3); its address is only
                # known once the link is up.
                tests.append("link-local")
                continue
            if lg.address is None or lg.kernel_owned:
                continue
            used.add(lg.address.ip)
            if lg.address.version == 4 and lg.address.network not in subnets4:
                subnets4.append(ipaddress.IPv4Network(lg.address.network))
            elif (
                lg.address.version == 6
                and not lg.address.ip.is_link_local
                and lg.address.network not in subnets6
            ):
                subnets6.append(ipaddress.IPv6Network(lg.address.network))
            if not lg.up:
                continue
            if itf.ipmp or lg.ipmp_unit is not None:
                # Solaris 11: a data address of the IPMP interface, bound or not yet.
                bound.setdefault(itf.group, []).append(str(lg.address))
            else:
                (tests if lg.nofailover else data).append(str(lg.address))
        if not itf.ipmp:
            nics.append(NicPlan(itf.name, itf.group, itf.standby, tuple(tests), tuple(data)))
    ipmp = tuple(IpmpPlan(itf.name, itf.group, tuple(bound.get(itf.group, ())))
                 for itf in config.interfaces if itf.ipmp)

    routers4 = [a for a in env.defaultrouters if a.version == 4]
    routers6 = [a for a in env.defaultrouters if a.version == 6 and not a.is_link_local]
    if routers4 and subnets4 and not any(routers4[0] in s for s in subnets4):
        nets = ", ".join(map(str, subnets4))
        raise LabError(
            f"defaultrouter {routers4[0]} is on none of the subnets of the hostname files ({nets})"
        )

    def pick(subnets: Sequence[Any], routers: Sequence[Any]) -> tuple[list[str], list[str]]:
        rts: list[str] = []
        peers: list[str] = []
        for net in subnets:
            given = next((r for r in routers if r in net), None)
            router = given if given is not None else next(_free_addresses(net, used, from_top=False), None)
            if router is None:
                continue
            used.add(router)
            peer = next(_free_addresses(net, used, from_top=True), None)
            if peer is None:
                continue
            used.add(peer)
            rts.append(f"{router}/{net.prefixlen}")
            peers.append(f"{peer}/{net.prefixlen}")
        return rts, peers

    r4, p4 = pick(subnets4, routers4)
    r6, p6 = pick(subnets6, routers6)
    return NetworkPlan(
        nics=tuple(nics),
        router4=r4[0] if r4 else None,
        peer4=p4[0] if p4 else None,
        router6=r6[0] if r6 else None,
        peer6=p6[0] if p6 else None,
        extra_router=tuple(r4[1:] + r6[1:]),
        extra_peer=tuple(p4[1:] + p6[1:]),
        router_from_files=bool(routers4 and r4 and r4[0].split("/")[0] == str(routers4[0])),
        fdt_ms=settings.failure_detection_time_ms,
        failback=settings.failback,
        track_all=not settings.track_interfaces_only_with_groups,
        problems=tuple(problems),
        ipmp=ipmp,
        transitive=transitive,
        script=s11[0].script if s11 is not None else "",
    )
