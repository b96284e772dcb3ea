"""``ipmp-boot`` and ifupdown (Debian's default) on the same NIC (issue 14).

With an installer-style ``iface qfe0 inet static`` under the root, ipmp-boot
refuses and changes nothing; ``--take-over`` comments the stanza out, keeps
the original in ``etc/ipmp/takeover/`` and boots; copying the original back
undoes it.  NetworkManager and networkd are fakes that fail (not running),
so only the files count.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from labhost import BIN, Host, MakeTopology, configuring_lines, copy_example, expected_addresses, spec

from ipmp.host.ifupdown import MARK

EXAMPLE = "active-active"
STANZA = "allow-hotplug qfe0\niface qfe0 inet static\n\taddress 198.51.100.5/24\n\tgateway 198.51.100.1\n"


def _no_services(root: Path) -> Path:
    """Fake tools in the root's usr/bin, where ipmp-boot looks for them (``coexist.find_tool``)."""
    bindir = root / "usr" / "bin"
    bindir.mkdir(parents=True)
    for name in ("nmcli", "networkctl"):
        (bindir / name).write_text("#!/bin/sh\necho 'not running' >&2\nexit 1\n")
        (bindir / name).chmod(0o755)
    return bindir


def _boot(host: Host, bindir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["env", "SUNW_NO_MPATHD=1", str(BIN / "ipmp-boot"), "-R", str(host.root), *args]
    return host.topo.run(host.topo.host, argv, check=False)


def test_ifupdown_refused_then_taken_over_and_undone(make_topology: MakeTopology, tmp_path: Path) -> None:
    root = copy_example(EXAMPLE, tmp_path)
    network = root / "etc/network"
    (network / "interfaces.d").mkdir(parents=True)
    (network / "interfaces").write_text("source /etc/network/interfaces.d/*\n\nauto lo\n"
                                        "iface lo inet loopback\n")
    stanza = network / "interfaces.d/qfe0"
    stanza.write_text(STANZA)
    stanza.chmod(0o640)
    host = Host(make_topology(nics=("qfe0", "qfe1")), root)
    bindir = _no_services(root)
    before = host.snapshot()
    backup = root / "etc/ipmp/takeover/etc/network/interfaces.d/qfe0"

    refused = _boot(host, bindir)

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [
        f"ipmp-boot: ifupdown manages qfe0, which the hostname files configure ({stanza}:2: iface qfe0 "
        "inet static): it would put its own addresses and routes beside in.mpathd's and undo its moves.  "
        "Nothing was changed.",
        "ipmp-boot: to hand them over: from a console, 'ifdown qfe0' (ifupdown takes its addresses and "
        f"routes away), then 'ipmp-boot --take-over': it comments the stanzas out of {stanza} and keeps "
        f"the original in {backup} (copy it back to undo).",
    ]
    assert host.snapshot() == before and stanza.read_text() == STANZA and not backup.exists()

    dry = _boot(host, bindir, "--dry-run", "--take-over")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        f"# --take-over: would comment out qfe0 in {stanza} (original kept in {backup})")
    assert host.snapshot() == before and stanza.read_text() == STANZA and not backup.exists()

    taken = _boot(host, bindir, "--take-over")
    assert (taken.returncode, taken.stderr) == (0, "")
    assert taken.stdout.splitlines()[0].startswith(
        f"ipmp-boot: commented out the ifupdown stanzas of qfe0 in {stanza}; the original is {backup}")
    assert taken.stdout.splitlines()[1:] == configuring_lines(host).splitlines()
    assert stanza.read_text() == "".join(MARK + line + "\n" for line in STANZA.splitlines())
    assert backup.read_text() == STANZA
    assert stat.S_IMODE(stanza.stat().st_mode) == 0o640 and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(p.name for p in stanza.parent.iterdir()) == ["qfe0"]
    for nic in host.topo.nics:
        assert host.addresses4(nic) == expected_addresses(spec(EXAMPLE), nic), nic

    # Nothing left to take over: a plain boot is quiet.
    again = _boot(host, bindir)
    assert (again.returncode, again.stderr) == (0, ""), again.stderr

    # Undo as the message says: ifupdown has the NIC again, and ipmp-boot refuses again.
    stanza.write_text(backup.read_text())
    assert _boot(host, bindir).returncode == 1
