"""The files that make the other network managers let go of a NIC, and keep the recipe's sysctls.

What ``ipmp-boot --take-over`` writes, or names when it refuses
(``ipmp.host.coexist`` says which service manages which NIC, and why each
file is the way out): the NetworkManager and systemd-networkd drop-ins, the
ifupdown and netplan take-over, and ``etc/sysctl.d/90-ipmp.conf``.  The file
texts are pure; ``write_text`` writes a file (mode 0644, atomically),
and the ``take_over_*`` functions write them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from ipmp.host import ifupdown
from ipmp.host.coexist import (
    IFUPDOWN,
    NETPLAN,
    NETWORKD_CONF_DROPIN,
    NM_DROPIN,
    Managed,
)
from ipmp.linux.view import nic_sysctls
from ipmp.model import Family

__all__ = [
    "DropinNic",
    "networkd_conf_dropin",
    "networkd_dropin",
    "nm_dropin",
    "refusal_lines",
    "sysctl_dropin",
    "take_over_files",
    "take_over_service",
    "which_configure",
    "without_host_wide",
    "write_text",
]

#: The first line of every drop-in: who wrote it, and why.
_HEADER = "# Written by ipmp-boot: IP multipathing (in.mpathd) owns the addresses of these NICs.\n"


def _nm_listed(text: str) -> list[str]:
    names: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().rstrip("+").strip() == "unmanaged-devices":
            for item in value.split(";"):
                kind, _, name = item.strip().partition(":")
                if kind == "interface-name" and name and name not in names:
                    names.append(name)
    return names


def nm_dropin(nics: Iterable[str], existing: str = "") -> str:
    """NetworkManager's drop-in for ``nics``, keeping the names ``existing`` (our old file) lists."""
    names = _nm_listed(existing)
    names += [n for n in nics if n not in names]
    items = "".join(f"interface-name:{n};" for n in names)
    return f"{_HEADER}[keyfile]\nunmanaged-devices+={items}\n"


def networkd_dropin(nic: str) -> str:
    return f"{_HEADER}[Match]\nName={nic}\n\n[Link]\nUnmanaged=yes\n"


def networkd_conf_dropin() -> str:
    """networkd.conf's drop-in: leave the routing policy rules alone that networkd did not make.

    Each time networkd configures a link it manages (at its start, ``networkctl
    reload`` or ``reconfigure``, a carrier change) it removes every rule it did
    not make, but the kernel's: in.mpathd's ``from <address> lookup <table>``
    rules of the NICs it does not manage too (seen on a Debian 13 guest,
    tests/vm/test_coexist.py; in.mpathd put them back, after a window in which
    the data addresses' traffic left by the main table).  networkd reads this
    file when it starts.
    """
    return (_HEADER.replace("the addresses of these NICs", "its routing policy rules (protocol 73)")
            + "[Network]\nManageForeignRoutingPolicyRules=no\n")


def _sysctl_line(key: str, value: str) -> str:
    # sysctl.d takes "/" separators too, which interface names with dots need.
    shown = key if any("." in p for p in key.split("/")) else key.replace("/", ".")
    return f"{shown} = {value}\n"


class DropinNic(NamedTuple):
    """A NIC of the sysctl drop-in: its Linux name, plumbed families, and whether it is in a group."""

    name: str
    families: frozenset[Family]
    grouped: bool


def sysctl_dropin(nics: Sequence[DropinNic]) -> str:
    """The recipe's sysctls for each configured NIC, by its Linux name."""
    lines = [_HEADER.replace("the addresses of these NICs", "these settings"),
             "# Per NIC only: answer ARP only on the NIC that holds the address, loose\n"
             "# reverse-path filter in an IPMP group, keep secondaries, skip routes of\n"
             "# links that are down.  conf.all stays as the administrator set it.\n"]
    for nic in nics:
        lines.append(f"# {nic.name}\n")
        for family in (Family.INET, Family.INET6):
            if family in nic.families:
                lines += [_sysctl_line(k, v) for k, v in nic_sysctls(nic.name, family, grouped=nic.grouped)]
    return "".join(lines)


#: The comment above the host-wide lines of older drop-ins.
_OLD_HOST_WIDE_COMMENT = (
    "# Host-wide: answer ARP only on the NIC that holds the address, loose",
    "# reverse-path filter, keep secondaries, skip routes of links that are down.",
)


def _sets_conf_all(line: str) -> bool:
    key, eq, _ = line.partition("=")
    key = key.strip().lstrip("-")  # sysctl.d: a leading "-" ignores a failed write
    if not eq or key.startswith("#") or key.startswith(";"):
        return False
    parts = key.split("/") if "/" in key else key.split(".")
    under_conf = parts[:3] in (["net", "ipv4", "conf"], ["net", "ipv6", "conf"])
    return under_conf and len(parts) > 4 and parts[3] == "all"


def without_host_wide(text: str) -> str:
    """An older drop-in's text without its ``conf.all`` lines, which loosened every interface of the host."""
    kept = [line for line in text.splitlines(keepends=True)
            if not _sets_conf_all(line) and line.rstrip("\n") not in _OLD_HOST_WIDE_COMMENT]
    return "".join(kept)


def write_text(path: Path, text: str) -> bool:
    """Write ``path`` (atomically, parents made) unless it already holds ``text``; True if written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # 0644 from the start and never through a link left at the temporary name.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(fd, 0o644)
        out.write(text)
    os.replace(tmp, path)
    return True


# --------------------------------------------------------------------------
# ifupdown and netplan: what to say, and the take-over
# --------------------------------------------------------------------------


def which_configure(named: str, db_named: str = "", db: Path | None = None) -> str:
    """``NICS, which the hostname files configure``, and the NICs only ``db`` (ipadm.conf) configures.

    ``named``: the NICs of the hostname files as a message shows them (with
    their Solaris names), ``db_named`` those of Solaris 11's persistent
    configuration ``db``; either may be empty.  The administrator is told
    which file to look in: a NIC of ipadm.conf has no hostname file.
    """
    parts = [f"{named}, which the hostname files configure"] if named else []
    if db_named:
        parts.append(f"{db_named}, which {db} configures")
    return ", and ".join(parts)


def _too(db_named: str, db: Path | None, hostname: bool) -> str:
    """Who else configures the NICs netplan configures: ``the hostname files configure them too``."""
    if not db_named:
        return "the hostname files configure them too"
    if not hostname:
        return f"{db} configures them too"
    return f"the hostname files and {db} ({db_named}) configure them too"


def refusal_lines(root: Path, managed: Managed, named: str, db_named: str = "",
                  db: Path | None = None) -> list[str]:
    """Why ``ipmp-boot`` refuses a NIC ifupdown or netplan configures, and what to do.

    ``named``: the NICs the hostname files configure as the message shows
    them (with their Solaris names); ``db_named``: those only ``db``
    (``etc/ipadm/ipadm.conf`` under the root) configures.
    """
    if managed.service == IFUPDOWN:
        backups = ", ".join(str(ifupdown.backup_path(root, f)) for f in managed.files)
        files = ", ".join(str(f) for f in managed.files)
        nics = " ".join(managed.nics)
        return [
            f"ipmp-boot: ifupdown manages {which_configure(named, db_named, db)} "
            f"({'; '.join(managed.sources)}): it would put its own addresses and routes beside "
            "in.mpathd's and undo its moves.  Nothing was changed.",
            f"ipmp-boot: to hand them over: from a console, 'ifdown {nics}' (ifupdown takes its "
            f"addresses and routes away), then 'ipmp-boot --take-over': it comments the stanzas out "
            f"of {files} and keeps the original in {backups} (copy it back to undo).",
        ]
    files = ", ".join(str(p) for p in managed.dropins(root))
    services = " and ".join(managed.renderers)
    both = ", ".join(n for n in (named, db_named) if n)
    return [
        f"ipmp-boot: netplan configures {both} for {services} ({', '.join(managed.sources)}), "
        f"and {_too(db_named, db, bool(named))}: it would undo in.mpathd's address moves.  "
        "Nothing was changed.",
        f"ipmp-boot: to hand them over, run 'ipmp-boot --take-over' (it writes {files}, which wins "
        f"over what netplan renders, and runs '{managed.reload}'); and take them out of "
        f"{', '.join(managed.sources)}.",
    ]


def take_over_files(root: Path, managed: Managed, *, write: bool) -> list[str]:
    """``--take-over`` for ifupdown or netplan; the lines to print (``#`` lines without ``write``).

    Raises:
        OSError: a file of ifupdown's cannot be read or rewritten.
    """
    nics = " ".join(managed.nics)
    if managed.service == NETPLAN:
        lines: list[str] = []
        for service in managed.renderers:
            for path in Managed(service, managed.nics).dropins(root):
                if path.match(str(NETWORKD_CONF_DROPIN)):
                    lines += _take_over_rules(path, service, write=write)
                    continue
                text = _dropin_text(path, managed.nics)
                if not write:
                    lines.append(f"# --take-over: would write {path} ({service} lets go of {nics}, "
                                 "whatever netplan renders)")
                elif write_text(path, text):
                    lines.append(f"ipmp-boot: wrote {path}: {service} lets go of {nics} (netplan "
                                 f"renders them for it) once it reads it ('{Managed(service, ()).reload}')")
        return lines
    stanzas = ifupdown.managed_stanzas(ifupdown.read(root), managed.nics)
    lines = []
    for path, backup in ifupdown.take_over(root, stanzas, write=write):
        if backup is None:
            continue
        if not write:
            lines.append(f"# --take-over: would comment out {nics} in {path} (original kept in {backup})")
        else:
            lines.append(f"ipmp-boot: commented out the ifupdown stanzas of {nics} in {path}; the original "
                         f"is {backup} (copy it back to undo).  The addresses and routes ifupdown set "
                         "stay until the next boot; its routes go with: "
                         + "; ".join(f"ip route flush dev {nic} proto boot" for nic in managed.nics))
    return lines


def _dropin_text(path: Path, nics: Sequence[str]) -> str:
    """What ``--take-over`` writes at ``path``, one of ``Managed.dropins`` (NetworkManager's keeps names)."""
    if path.match(str(NM_DROPIN)):
        return nm_dropin(nics, _read_or_empty(path))
    if path.match(str(NETWORKD_CONF_DROPIN)):
        return networkd_conf_dropin()
    return networkd_dropin(path.stem.removeprefix("10-ipmp-"))


def _take_over_rules(path: Path, service: str, *, write: bool) -> list[str]:
    """networkd.conf's drop-in (``networkd_conf_dropin``): a line if it is (or would be) written now."""
    if _read_or_empty(path) == networkd_conf_dropin():
        return []
    if not write:
        return [f"# --take-over: would write {path} ({service} leaves in.mpathd's routing policy rules "
                "alone)"]
    write_text(path, networkd_conf_dropin())
    return [f"ipmp-boot: wrote {path}: {service} leaves in.mpathd's routing policy rules alone from its "
            "next start"]


def take_over_service(root: Path, managed: Managed, *, write: bool) -> list[str]:
    """``--take-over`` for NetworkManager or networkd: write (or, without ``write``, name) the drop-ins."""
    lines: list[str] = []
    nics = " ".join(managed.nics)
    for path in managed.dropins(root):
        text = _dropin_text(path, managed.nics)
        if path.match(str(NETWORKD_CONF_DROPIN)):
            lines += _take_over_rules(path, managed.service, write=write)
        elif not write:
            same = _read_or_empty(path) == text
            lines.append(f"# --take-over: {path} is written; {managed.service} has not read it yet" if same
                         else f"# --take-over: would write {path} ({managed.service} lets go of {nics})")
        elif write_text(path, text):
            lines.append(f"ipmp-boot: wrote {path}: {managed.service} lets go of {nics} "
                         f"once it reads it ('{managed.reload}')")
        else:
            lines.append(f"ipmp-boot: {path} already marks {nics} unmanaged; {managed.service} "
                         f"has not read it yet: run '{managed.reload}'")
    return lines


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
