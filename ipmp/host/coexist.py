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

The drop-ins themselves, their texts and the take-over that writes them,
are ``ipmp.host.dropins``'.  The parsers are pure; ``detect`` runs the tools.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipmp.host import ifupdown, netplan

__all__ = [
    "FILE_BASED",
    "IFUPDOWN",
    "NETPLAN",
    "NETWORKD_CONF_DROPIN",
    "NETWORKD_DIR",
    "NM_DROPIN",
    "SYSCTL_DROPIN",
    "Managed",
    "detect",
    "detect_files",
    "find_tool",
    "hand_over",
    "parse_networkctl",
    "parse_nmcli",
    "tool_runner",
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
