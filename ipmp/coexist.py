"""Living next to NetworkManager and systemd-networkd, and surviving a reboot.

Either service, if it manages a NIC that ``ipmp-boot`` configures, puts its
own idea of the addresses back and so undoes in.mpathd's address moves.
``ipmp-boot`` asks each one, when its command-line tool is installed, which
links it manages:

* NetworkManager: ``nmcli -t -f DEVICE,STATE device`` (terse: ``name:state``,
  a ``:`` in a name escaped as ``\\:``); every state but ``unmanaged``
  counts (``unavailable`` and ``disconnected`` devices are still managed:
  NetworkManager acts on them as soon as they get carrier).
* systemd-networkd: ``networkctl list --no-legend`` (``IDX LINK TYPE
  OPERATIONAL SETUP``); every setup state but ``unmanaged`` counts.  A link
  counts only if both its name and index match ours, since networkd answers
  for its own network namespace.

A tool that fails (the service is not running, no D-Bus) manages nothing.
Both run with ``LC_ALL=C`` so their words are not translated.

The way out is a drop-in that marks the NICs unmanaged, which ``ipmp-boot
--take-over`` writes below the root:

* ``etc/NetworkManager/conf.d/90-ipmp.conf``: ``[keyfile]`` with
  ``unmanaged-devices+=interface-name:NIC;...``.  ``+=`` appends to the list
  that earlier files set (NetworkManager.conf(5)); a plain ``=`` would
  replace an administrator's own list.  Names already in the file are kept.
* ``etc/systemd/network/10-ipmp-NIC.network``: ``[Match] Name=NIC`` and
  ``[Link] Unmanaged=yes``.  networkd uses the first ``.network`` file that
  matches, in name order, hence the low number.

The services read them on ``nmcli general reload conf`` and ``networkctl
reload`` (or a restart, or the next boot).

``etc/sysctl.d/90-ipmp.conf`` holds the sysctls of the routing recipe
(``view.GLOBAL_SYSCTLS`` and the per-NIC ones for each configured NIC and
family), so that systemd-sysctl sets them again at the next boot (the
per-NIC keys when udev sees the NIC appear) before ``ipmp-boot`` runs.

The parsers and file texts are pure; ``detect`` runs the tools and
``write_text`` writes a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipmp.model import Family
from ipmp.view import GLOBAL_SYSCTLS, NIC_SYSCTLS4, NIC_SYSCTLS6

__all__ = [
    "NETWORKD_DIR",
    "NM_DROPIN",
    "SYSCTL_DROPIN",
    "Managed",
    "detect",
    "networkd_dropin",
    "nm_dropin",
    "parse_networkctl",
    "parse_nmcli",
    "sysctl_dropin",
    "write_text",
]

NM_DROPIN = Path("etc/NetworkManager/conf.d/90-ipmp.conf")
NETWORKD_DIR = Path("etc/systemd/network")
SYSCTL_DROPIN = Path("etc/sysctl.d/90-ipmp.conf")

NETWORKMANAGER = "NetworkManager"
NETWORKD = "systemd-networkd"

#: How long a tool may take to answer (s).
TOOL_TIMEOUT = 10.0

_HEADER = "# Written by ipmp-boot: IP multipathing (in.mpathd) owns the addresses of these NICs.\n"


@dataclass(frozen=True)
class Managed:
    """A service that manages some of the NICs ``ipmp-boot`` configures."""

    service: str  # NETWORKMANAGER or NETWORKD
    nics: tuple[str, ...]  # Linux names

    @property
    def reload(self) -> str:
        return "nmcli general reload conf" if self.service == NETWORKMANAGER else "networkctl reload"

    def release(self) -> str | None:
        """A command that lets go of the NICs at once, until the service restarts; None if none."""
        if self.service == NETWORKMANAGER:
            return "; ".join(f"nmcli device set {nic} managed no" for nic in self.nics)
        return None  # networkd has only the .network file

    def dropins(self, root: Path) -> tuple[Path, ...]:
        if self.service == NETWORKMANAGER:
            return (root / NM_DROPIN,)
        return tuple(root / NETWORKD_DIR / f"10-ipmp-{nic}.network" for nic in self.nics)


# --------------------------------------------------------------------------
# What the tools say
# --------------------------------------------------------------------------


def _split_terse(line: str) -> list[str]:
    """nmcli ``-t`` fields: ``:`` separates, ``\\:`` and ``\\\\`` are escapes."""
    fields: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_nmcli(text: str) -> dict[str, str]:
    """``nmcli -t -f DEVICE,STATE device`` -> device -> state."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        fields = _split_terse(line)
        if len(fields) >= 2 and fields[0]:
            states[fields[0]] = fields[1]
    return states


def parse_networkctl(text: str) -> dict[str, tuple[int, str]]:
    """``networkctl list --no-legend`` -> link -> (index, setup state)."""
    links: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 5 and words[0].isdigit():
            links[words[1]] = (int(words[0]), words[4])
    return links


Runner = Callable[[Sequence[str]], "str | None"]


def run_tool(argv: Sequence[str]) -> str | None:
    """A tool's stdout, or None when it is missing or fails (its service is not running)."""
    if shutil.which(argv[0]) is None:
        return None
    env = dict(os.environ, LC_ALL="C")
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def detect(nics: Mapping[str, int], run: Runner = run_tool) -> list[Managed]:
    """Which of ``nics`` (Linux name -> ifindex) each service manages."""
    found: list[Managed] = []
    out = run(["nmcli", "-t", "-f", "DEVICE,STATE", "device"])
    if out is not None:
        states = parse_nmcli(out)
        mine = tuple(n for n in nics if n in states and states[n] != "unmanaged")
        if mine:
            found.append(Managed(NETWORKMANAGER, mine))
    out = run(["networkctl", "list", "--no-legend", "--no-pager"])
    if out is not None:
        links = parse_networkctl(out)
        mine = tuple(n for n, index in nics.items()
                     if n in links and links[n][0] == index and links[n][1] != "unmanaged")
        if mine:
            found.append(Managed(NETWORKD, mine))
    return found


# --------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------


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


def _sysctl_line(key: str, value: str) -> str:
    # sysctl.d takes "/" separators too, which interface names with dots need.
    shown = key if any("." in p for p in key.split("/")) else key.replace("/", ".")
    return f"{shown} = {value}\n"


def sysctl_dropin(nics: Sequence[tuple[str, frozenset[Family]]]) -> str:
    """The recipe's sysctls for ``(Linux name, plumbed families)`` of each configured NIC."""
    lines = [_HEADER.replace("the addresses of these NICs", "these settings"),
             "# Host-wide: answer ARP only on the NIC that holds the address, loose\n"
             "# reverse-path filter, keep secondaries, skip routes of links that are down.\n"]
    lines += [_sysctl_line(k, v) for k, v in GLOBAL_SYSCTLS]
    for nic, families in nics:
        lines.append(f"# {nic}\n")
        if Family.INET in families:
            lines += [_sysctl_line(f"net/ipv4/conf/{nic}/{k}", v) for k, v in NIC_SYSCTLS4]
        if Family.INET6 in families:
            lines += [_sysctl_line(f"net/ipv6/conf/{nic}/{k}", v) for k, v in NIC_SYSCTLS6]
    return "".join(lines)


def write_text(path: Path, text: str) -> bool:
    """Write ``path`` (atomically, parents made) unless it already holds ``text``; True if written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True
