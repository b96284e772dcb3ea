"""Living next to NetworkManager, systemd-networkd, ifupdown and netplan, and surviving a reboot.

Any of them, if it manages a NIC that ``ipmp-boot`` configures, puts its
own idea of the addresses back and so undoes in.mpathd's address moves.
ifupdown and netplan are configured by files, read under the root
(``ipmp.host.ifupdown``, ``ipmp.host.netplan``: what counts as managed, and why);
the two services are asked.
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
Both run with ``LC_ALL=C`` so their words are not translated.  They are the
root's own, by absolute path from its system directories (``TOOL_DIRS``:
``/usr/bin/nmcli`` on a host), never looked up in the caller's ``PATH``,
where a directory someone else can write to would have ipmp-boot run their
program as root; for the same reason a tool is run only if nobody but root
could have put it there (``find_tool``).  A root with no such tool (a lab's)
has no such service.

The way out is a drop-in that marks the NICs unmanaged, which ``ipmp-boot
--take-over`` writes below the root:

* ``etc/NetworkManager/conf.d/90-ipmp.conf``: ``[keyfile]`` with
  ``unmanaged-devices+=interface-name:NIC;...``.  ``+=`` appends to the list
  that earlier files set (NetworkManager.conf(5)); a plain ``=`` would
  replace an administrator's own list.  Names already in the file are kept.
* ``etc/systemd/network/10-ipmp-NIC.network``: ``[Match] Name=NIC`` and
  ``[Link] Unmanaged=yes``.  networkd uses the first ``.network`` file that
  matches, in name order, hence the low number.
* ``etc/systemd/networkd.conf.d/90-ipmp.conf``:
  ``ManageForeignRoutingPolicyRules=no`` (``networkd_conf_dropin`` says why).

The services read them on ``nmcli general reload conf`` and ``networkctl
reload`` (or a restart, or the next boot).  ``--take-over`` runs that itself
and waits until the service reports the NICs unmanaged before it configures
anything (``hand_over``): NetworkManager deconfigures a device it stops
managing, every address on it included, so addresses added before it let go
are lost (seen on a Debian 13 guest, tests/vm/test_coexist.py: ``activated ->
unmanaged (reason 'unmanaged-user-settings')`` took ipmp-boot's addresses with
it).

For ifupdown, ``--take-over`` comments the NIC's stanzas out of its files,
keeping the originals in ``etc/ipmp/takeover/`` (``ipmp.host.ifupdown``); for
netplan it writes the drop-in of the service netplan renders for, which
wins over netplan's output (``ipmp.host.netplan``).  ``take_over_files`` and
``refusal_lines`` say what to do for these two.

``etc/sysctl.d/90-ipmp.conf`` holds the sysctls of the routing recipe
(``view.nic_sysctls`` of each configured NIC and family), so that
systemd-sysctl sets them again at the next boot, when udev sees the NIC
appear, before ``ipmp-boot`` runs.  It names NICs only, never ``conf.all``:
the host's other interfaces keep what their administrator set.  A file an
older version wrote with ``conf.all`` lines loses them at the next boot
(``without_host_wide``).

The parsers and file texts are pure; ``detect`` runs the tools and
``write_text`` writes a file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ipmp.host import ifupdown, netplan
from ipmp.linux.view import nic_sysctls
from ipmp.model import Family

__all__ = [
    "FILE_BASED",
    "IFUPDOWN",
    "NETPLAN",
    "NETWORKD_CONF_DROPIN",
    "NETWORKD_DIR",
    "NM_DROPIN",
    "SYSCTL_DROPIN",
    "DropinNic",
    "Managed",
    "detect",
    "detect_files",
    "find_tool",
    "hand_over",
    "networkd_dropin",
    "nm_dropin",
    "parse_networkctl",
    "parse_nmcli",
    "refusal_lines",
    "sysctl_dropin",
    "take_over_files",
    "take_over_service",
    "tool_runner",
    "without_host_wide",
    "write_text",
]

NM_DROPIN = Path("etc/NetworkManager/conf.d/90-ipmp.conf")
NETWORKD_DIR = Path("etc/systemd/network")
NETWORKD_CONF_DROPIN = Path("etc/systemd/networkd.conf.d/90-ipmp.conf")
SYSCTL_DROPIN = Path("etc/sysctl.d/90-ipmp.conf")

NETWORKMANAGER = "NetworkManager"
NETWORKD = "systemd-networkd"
IFUPDOWN = "ifupdown"
NETPLAN = "netplan"
#: Managers found in files, whose refusal and take-over are ``refusal_lines``
#: and ``take_over_files`` rather than the services' drop-in alone.
FILE_BASED = (IFUPDOWN, NETPLAN)

#: How long a tool may take to answer (s).
TOOL_TIMEOUT = 10.0
#: How long ``--take-over`` waits for a service to report the NICs unmanaged once told to
#: read the drop-ins (s): NetworkManager took 0.2 s on an emulated guest.
RELEASE_TIMEOUT = 30.0
#: Between two looks meanwhile (s).
RELEASE_POLL = 0.5

_HEADER = "# Written by ipmp-boot: IP multipathing (in.mpathd) owns the addresses of these NICs.\n"


@dataclass(frozen=True)
class Managed:
    """A service that manages some of the NICs ``ipmp-boot`` configures."""

    service: str  # NETWORKMANAGER, NETWORKD, IFUPDOWN or NETPLAN
    nics: tuple[str, ...]  # Linux names
    #: IFUPDOWN: the stanzas (``FILE:LINE: iface ...``); NETPLAN: the files.
    sources: tuple[str, ...] = ()
    #: IFUPDOWN: the files take-over edits; NETPLAN: the YAML files.
    files: tuple[Path, ...] = ()
    #: NETPLAN: the services it renders the NICs for (NETWORKD, NETWORKMANAGER).
    renderers: tuple[str, ...] = ()

    def _renderers(self) -> tuple[Managed, ...]:
        return tuple(Managed(r, self.nics) for r in self.renderers)

    @property
    def reload(self) -> str:
        if self.service == IFUPDOWN:
            return "nothing to reload: ifupdown reads its files at each ifup"
        if self.service == NETPLAN:
            return "; ".join(m.reload for m in self._renderers())
        return "nmcli general reload conf" if self.service == NETWORKMANAGER else "networkctl reload"

    def release(self) -> str | None:
        """A command that lets go of the NICs at once, until the service restarts; None if none."""
        if self.service == NETWORKMANAGER:
            return "; ".join(f"nmcli device set {nic} managed no" for nic in self.nics)
        return None  # networkd has only the .network file; ifupdown and netplan only their files

    def dropins(self, root: Path) -> tuple[Path, ...]:
        """The files ``--take-over`` writes (for ifupdown: the files it edits)."""
        if self.service == IFUPDOWN:
            return self.files
        if self.service == NETPLAN:
            return tuple(p for m in self._renderers() for p in m.dropins(root))
        if self.service == NETWORKMANAGER:
            return (root / NM_DROPIN,)
        return (*(root / NETWORKD_DIR / f"10-ipmp-{nic}.network" for nic in self.nics),
                root / NETWORKD_CONF_DROPIN)


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


#: Where the services' tools are looked for, under the root, in this order.
TOOL_DIRS = ("usr/sbin", "usr/bin", "sbin", "bin")


def _only_roots(path: Path) -> bool:
    """Nobody but root (or we) could have put ``path`` there: it and every directory above it.

    Each is owned by root or by us and writable by nobody else, but a sticky
    directory (``/tmp``), where others cannot rename or remove what is ours.
    Symbolic links are resolved first (``/sbin`` -> ``usr/sbin``).
    """
    real = Path(os.path.realpath(path))
    mine = (0, os.geteuid())
    for part in (real, *real.parents):
        try:
            st = os.stat(part)
        except OSError:
            return False
        if st.st_uid not in mine:
            return False
        if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            return False
    return True


def find_tool(root: Path, name: str) -> Path | None:
    """The absolute path of the tool ``name`` in the root's ``TOOL_DIRS``, None if it has none we may run."""
    for directory in TOOL_DIRS:
        path = root / directory / name
        if path.is_file() and os.access(path, os.X_OK):
            return path if _only_roots(path) else None
    return None


def run_tool(argv: Sequence[str], root: Path = Path("/")) -> str | None:
    """A tool of ``root`` (``find_tool``): its stdout, or None when it is missing or fails (its
    service is not running)."""
    path = find_tool(root, argv[0])
    if path is None:
        return None
    env = dict(os.environ, LC_ALL="C")
    try:
        done = subprocess.run([str(path), *argv[1:]], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def tool_runner(root: Path) -> Runner:
    """``run_tool`` with the tools of ``root``."""
    return lambda argv: run_tool(argv, root)


def detect_files(root: Path, nics: Iterable[str]) -> list[Managed]:
    """Which of ``nics`` (Linux names) ifupdown's and netplan's files under ``root`` configure."""
    wanted = list(nics)
    found: list[Managed] = []
    stanzas = ifupdown.managed_stanzas(ifupdown.read(root), wanted)
    if stanzas:
        mine = tuple(n for n in wanted if any(s.nic == n for s in stanzas))
        files = tuple(dict.fromkeys(s.path for s in stanzas))
        found.append(Managed(IFUPDOWN, mine, tuple(str(s) for s in stanzas), files))
    named = netplan.read(root, wanted)
    if named:
        mine = tuple(n for n in wanted if any(n in f.nics for f in named))
        renderers = {r for f in named for r in f.renderers}
        order = ((netplan.NETWORKD, NETWORKD), (netplan.NETWORKMANAGER, NETWORKMANAGER))
        found.append(Managed(NETPLAN, mine, tuple(str(f.path) for f in named),
                             tuple(f.path for f in named),
                             tuple(service for word, service in order if word in renderers)))
    return found


def detect(nics: Mapping[str, int], run: Runner | None = None, root: Path | None = None) -> list[Managed]:
    """Which of ``nics`` (Linux name -> ifindex) each service manages.

    With ``root``, the files of ifupdown and netplan under it are read too
    (``detect_files``), and the services are asked with its tools (``run``
    by default: ``tool_runner(root)``, the host's for no root).
    """
    found: list[Managed] = [] if root is None else detect_files(root, nics)
    if run is None:
        run = tool_runner(Path("/") if root is None else root)
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


def reload_argv(service: str) -> tuple[str, ...]:
    """The command that makes a running ``service`` (NETWORKMANAGER, NETWORKD) read its drop-ins."""
    return ("nmcli", "general", "reload", "conf") if service == NETWORKMANAGER else ("networkctl", "reload")


def _services(managed: Sequence[Managed]) -> list[str]:
    """The running services whose drop-ins ``--take-over`` wrote (netplan's through its renderers)."""
    found: list[str] = []
    for m in managed:
        for service in (m.service,) if m.service in (NETWORKMANAGER, NETWORKD) else m.renderers:
            if service not in found:
                found.append(service)
    return found


#: The systemd unit of each service, for the advice when it cannot be made to reload.
_UNITS = {NETWORKMANAGER: "NetworkManager.service", NETWORKD: "systemd-networkd.service"}
#: The command that says why a service still manages a NIC.
_WHY = {NETWORKMANAGER: "nmcli device show {nic}", NETWORKD: "networkctl status {nic}"}


def hand_over(managed: Sequence[Managed], nics: Mapping[str, int], *, root: Path = Path("/"),
              run: Runner | None = None, timeout: float = RELEASE_TIMEOUT,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> tuple[list[str], list[str]]:
    """After ``--take-over`` wrote the drop-ins: have each service read them, and wait until it lets go.

    Before any address is added: NetworkManager flushes every address of a
    device it stops managing (ipmp's too), and a service that still manages
    a NIC undoes in.mpathd's moves.  ``nics``: Linux name -> ifindex, as for
    ``detect``; the tools are ``root``'s (``run``: ``tool_runner(root)``).
    Returns the lines to print and, if a service still manages
    a NIC when ``timeout`` is up, the error lines (then nothing may be
    configured).  ``networkctl reload`` asks networkd over D-Bus: on a host
    without a D-Bus daemon (Debian's systemd only recommends one) it fails and
    networkd reads nothing until it restarts, which is left to the admin: a
    restart reconfigures every link it manages.
    """
    services = _services(managed)
    if not services:
        return [], []  # ifupdown: nothing runs that could hold the NICs
    if run is None:
        run = tool_runner(root)
    wanted = {n: nics[n] for m in managed for n in m.nics if n in nics}
    failed = [service for service in services if run(reload_argv(service)) is None]
    started = clock()
    while True:
        still = [m for m in detect(wanted, run) if m.service in services]
        if not still or clock() - started >= timeout:
            break
        sleep(RELEASE_POLL)
    lines: list[str] = []
    errors: list[str] = []
    for service in services:
        reload = " ".join(reload_argv(service))
        held = [n for m in still if m.service == service for n in m.nics]
        mine = dict.fromkeys(n for m in managed for n in m.nics if service in (m.service, *m.renderers))
        if not held:
            lines.append(f"ipmp-boot: ran '{reload}': {service} let go of {' '.join(mine)}"
                         if service not in failed else f"ipmp-boot: '{reload}' failed, and {service} "
                         f"manages none of {' '.join(mine)}")
        elif service in failed:
            why = " (it needs a D-Bus daemon)" if service == NETWORKD else ""
            errors.append(f"ipmp-boot: {service} still manages {' '.join(held)}: '{reload}' failed{why}, "
                          f"so it has not read the drop-in.  Restart it ('systemctl restart "
                          f"{_UNITS[service]}'), then run 'ipmp-boot' again.  Nothing was configured.")
        else:
            errors.append(f"ipmp-boot: {service} still manages {' '.join(held)} {timeout:g} s after "
                          f"'{reload}' ('{_WHY[service].format(nic=held[0])}' says why: another file of "
                          "its own may match first).  Nothing was configured.")
    return lines, errors


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


def refusal_lines(root: Path, managed: Managed, named: str) -> list[str]:
    """Why ``ipmp-boot`` refuses a NIC ifupdown or netplan configures, and what to do.

    ``named``: the NICs as the message shows them (with their Solaris names).
    """
    if managed.service == IFUPDOWN:
        backups = ", ".join(str(ifupdown.backup_path(root, f)) for f in managed.files)
        files = ", ".join(str(f) for f in managed.files)
        nics = " ".join(managed.nics)
        return [
            f"ipmp-boot: ifupdown manages {named}, which the hostname files configure "
            f"({'; '.join(managed.sources)}): it would put its own addresses and routes beside "
            "in.mpathd's and undo its moves.  Nothing was changed.",
            f"ipmp-boot: to hand them over: from a console, 'ifdown {nics}' (ifupdown takes its "
            f"addresses and routes away), then 'ipmp-boot --take-over': it comments the stanzas out "
            f"of {files} and keeps the original in {backups} (copy it back to undo).",
        ]
    files = ", ".join(str(p) for p in managed.dropins(root))
    services = " and ".join(managed.renderers)
    return [
        f"ipmp-boot: netplan configures {named} for {services} ({', '.join(managed.sources)}), "
        "and the hostname files configure them too: it would undo in.mpathd's address moves.  "
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
