"""What ``ipmp-boot`` does, in order, without the printing.

1. ``etc/ipmp/ifmap`` (``ipmp.host.ifmap``) is checked against the kernel; any
   bad line stops everything.  Otherwise each NIC gets its Solaris name as an
   altname.
2. NetworkManager, systemd-networkd, ifupdown and netplan are asked whether
   they manage a NIC that a hostname file or ``etc/ipadm/ipadm.conf``
   configures (``ipmp.host.coexist``): a refusal, or with ``--take-over`` the
   drop-ins that make them let go.
3. The hostname files are booted (``ipmp.admin.bootfiles``).
4. ``etc/sysctl.d/90-ipmp.conf`` gets the recipe's sysctls for the
   configured NICs, so that a reboot keeps them.

``run_boot`` returns a ``BootRun``; the shell (``ipmp.cli.boot``) prints it
and chooses the exit status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ipmp.admin import ipadm
from ipmp.admin.bootfiles import BootResult, boot, boot_files
from ipmp.errors import IpmpError
from ipmp.host import coexist, dropins, ifmap, ipadm_db, lookups
from ipmp.host.coexist import Managed
from ipmp.host.ifmap import NameMap, canonical_name
from ipmp.kernel.execute import Kernel
from ipmp.model import Family, KernelState


@dataclass
class BootRun:
    """Everything one ipmp-boot did or would do."""

    result: BootResult | None = None
    ifmap_errors: list[str] = field(default_factory=list)
    names: NameMap = field(default_factory=NameMap)
    #: (Linux name, Solaris name) altnames added, or to add.
    altnames: tuple[tuple[str, str], ...] = ()
    managed: list[Managed] = field(default_factory=list)
    #: The NICs (Linux names) that etc/ipadm/ipadm.conf configures and no hostname file does.
    ipadm_nics: tuple[str, ...] = ()
    refused: bool = False
    #: What --take-over wrote (or would write), as lines to print.
    took_over: list[str] = field(default_factory=list)
    #: Why a service still manages a NIC after --take-over had it read the drop-ins: nothing configured.
    not_released: list[str] = field(default_factory=list)
    sysctl_note: str | None = None
    #: Skipped lines of hosts and netmasks (``lookups.FileWarning``), as lines to print.
    file_warnings: list[str] = field(default_factory=list)


async def run_boot(root: Path, dry_run: bool, take_over: bool) -> BootRun:
    """Everything ``ipmp-boot`` does under ``root`` (for ``dry_run``, would do), in order."""
    run = BootRun()
    try:
        run.file_warnings = [str(w) for w in lookups.environment_warnings(root)]
    except (IpmpError, OSError):
        pass  # the boot reads these files too, and reports the error where it always has
    entries, errors = ifmap.read_ifmap(root)
    async with Kernel(entries) as kernel:
        links = await kernel.linux_links()
        errors += ifmap.check_ifmap(entries, links)
        # A NIC of the map that Linux does not have (yet: a late driver, a removed card) is
        # a NIC missing at boot, not a bad map: said, and then its files fail to plumb and
        # its data addresses are moved (§6.5).  Refusing the whole map left every NIC
        # unconfigured for want of one (seen on a real boot, tests/vm/test_boot_order.py).
        known = {name for link in links for name in (link.name, *link.altnames)}
        absent = {e.linux_position for e in entries if e.linux not in known}
        if errors and all(e.position in absent for e in errors):
            run.file_warnings += [str(e) for e in errors]
            errors = ()
        if errors:
            ordered = sorted(errors, key=lambda e: e.position.line if e.position else 0)
            run.ifmap_errors = [str(e) for e in ordered]
            return run
        view = await kernel.read()
        run.names = kernel.names
        hostname = boot_files(view, root)
        nics = linux_nics(view, kernel.names, hostname)
        # ipadm.conf's NICs are in.mpathd's as much as the hostname files' (boot_db applies it below).
        db_nics = {n: i for n, i in linux_nics(view, kernel.names, ipadm_nics(view, root)).items()
                   if n not in nics}
        run.ipadm_nics = tuple(db_nics)
        nics.update(db_nics)
        run.managed = coexist.detect(nics, root=root)
        if run.managed and not take_over:
            run.refused = True
            return run
        for managed in run.managed:
            run.took_over += take_over_lines(root, managed, write=not dry_run)
        if run.managed and not dry_run:
            # Before any address: NetworkManager flushes a device it lets go of (coexist.hand_over).
            lines, run.not_released = coexist.hand_over(run.managed, nics, root=root)
            run.took_over += lines
            if run.not_released:
                return run
        run.altnames = ifmap.missing_altnames(entries, links)
        if not dry_run:
            for linux, solaris in run.altnames:
                await kernel.add_altname(linux, solaris)
        # Solaris 11's persistent configuration first (etc/ipadm/ipadm.conf), then the hostname files.
        db_boot = await ipadm.boot_db(kernel, root, dry_run=dry_run,
                                      hostname_nics=frozenset(hostname))
        run.result = await boot(kernel, root, dry_run=dry_run, skip=db_boot.conflicts)
        ipadm.add_to(run.result, db_boot)
        run.names = kernel.names
        grouped = grouped_nics(run.result)
        run.sysctl_note = persist_sysctls(root, run.result, kernel.names, grouped, write=not dry_run)
    return run


def linux_nics(view: KernelState, names: NameMap, configured: Iterable[str]) -> dict[str, int]:
    """The links of ``configured`` (view names): Linux name -> ifindex; a name no link has is left out."""
    return {names.linux(name): link.index for name in configured if (link := view.link(name)) is not None}


def ipadm_nics(view: KernelState, root: Path) -> list[str]:
    """The view names of the NICs ``etc/ipadm/ipadm.conf`` configures: its IP interfaces.

    Its IPMP interfaces are no Linux links (the model keeps them in the state
    store).  A file that cannot be read or parsed names no NIC here:
    ``ipadm.boot_db`` reports it, and configures nothing from it.
    """
    try:
        db = ipadm_db.load(root)
    except IpmpError:
        return []
    return list(dict.fromkeys(canonical_name(view, i.name) for i in db.interfaces if not i.ipmp))


def take_over_lines(root: Path, managed: Managed, *, write: bool) -> list[str]:
    """Write (or, for --dry-run, name) the drop-ins that make ``managed`` let go."""

    if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
        return dropins.take_over_files(root, managed, write=write)
    return dropins.take_over_service(root, managed, write=write)


def grouped_nics(result: BootResult) -> frozenset[str]:
    """The configured NICs that their files put in an IPMP group (they get rp_filter=2).

    As the boot (or ``--dry-run``, which records nothing) left them, line
    by line: the group of the lines that worked, or the one kept because
    the line that sets it failed (``bootsteps.keep_on_failure``).
    """
    return frozenset(result.grouped)


def persist_sysctls(
    root: Path, result: BootResult, names: NameMap, grouped: frozenset[str], *, write: bool
) -> str | None:
    """Write ``etc/sysctl.d/90-ipmp.conf`` for the configured NICs; a ``#`` note for --dry-run.

    With nothing configured the file keeps its NICs, but loses the
    ``conf.all`` lines an older version wrote: those loosened every
    interface of the host, and an upgrade must take them away.
    """

    families: dict[str, set[Family]] = {}
    for family, configured in sorted(result.configured.items()):
        for name in configured:
            families.setdefault(name, set()).add(family)
    path = root / coexist.SYSCTL_DROPIN
    try:
        old: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old = None
    if families:
        text = dropins.sysctl_dropin([dropins.DropinNic(names.linux(n), frozenset(f), n in grouped)
                                      for n, f in families.items()])
    elif old is not None:
        text = dropins.without_host_wide(old)
    else:
        return None
    if write:
        dropins.write_text(path, text)
        return None
    return None if old == text else f"# would write {path} (the sysctls above, for the next boot)"


def refusal_lines(root: Path, run: BootRun) -> list[str]:
    """Why ``ipmp-boot`` refused (``run.refused``) and what to do, each NIC with the file configuring it."""

    def shown(nics: Iterable[str]) -> str:
        return ", ".join(n if run.names.view(n) == n else f"{n} ({run.names.view(n)})" for n in nics)

    lines: list[str] = []
    db = ipadm_db.db_path(root)
    for managed in run.managed:
        # Each NIC with the file that configures it: that is where the administrator looks.
        named = shown(n for n in managed.nics if n not in run.ipadm_nics)
        db_named = shown(n for n in managed.nics if n in run.ipadm_nics)
        if managed.service in coexist.FILE_BASED:  # ifupdown, netplan
            lines += dropins.refusal_lines(root, managed, named, db_named, db)
            continue
        files = ", ".join(str(p) for p in managed.dropins(root))
        lines.append(f"ipmp-boot: {managed.service} manages {dropins.which_configure(named, db_named, db)}: "
                     "it would undo in.mpathd's address moves.  Nothing was changed.")
        lines.append(f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over': it writes {files}, runs "
                     f"'{managed.reload}' and waits until {managed.service} lets go, then configures them.")
        release = managed.release()
        if release is not None:
            lines.append(f"ipmp-boot: or, until {managed.service} restarts: {release}")
    return lines
