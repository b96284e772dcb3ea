"""``ipadm`` on the real kernel, as a Solaris 11 administrator works (Oracle's IPMP chapter, gfyeh).

The documented order (``create-ip``, ``create-ipmp -i``, ``create-addr`` on
the IPMP interface), where each data address lands in the kernel, bad input
that changes nothing (kernel, state store, persistent configuration), the
persistent configuration against ``-t``, and ``ipmp-boot`` re-creating the
configuration from ``etc/ipadm/ipadm.conf`` in a fresh namespace.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from labhost import BIN, Host, MakeTopology

NICS = ("net0", "net1")
DB = "etc/ipadm/ipadm.conf"


class Admin(Host):
    """The lab's host namespace, driven with ``ipadm`` under one root."""

    def ipadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        # SUNW_NO_MPATHD: no in.mpathd may outlive the test inside the namespace.
        argv = ["env", f"IPMP_ROOT={self.root}", "SUNW_NO_MPATHD=1", str(BIN / "ipadm"), *args]
        return self.topo.run(self.topo.host, argv, check=False)

    def ok(self, *args: str) -> str:
        proc = self.ipadm(*args)
        assert proc.returncode == 0, f"ipadm {' '.join(args)}: {proc.stderr}"
        assert proc.stderr == ""
        return proc.stdout

    def holders(self, address: str) -> list[tuple[str, str | None]]:
        """(NIC, label) of every kernel address ``address`` of the lab's NICs."""
        return [(nic, a["label"]) for nic in NICS for a in self.addresses4(nic) if a["local"] == address]

    def db(self) -> str:
        path = self.root / DB
        return path.read_text() if path.exists() else ""

    def stored(self) -> dict[str, Any]:
        return {i["name"]: i for i in json.loads(self.state_file.read_text())["interfaces"]}


@pytest.fixture
def admin(make_topology: MakeTopology, tmp_path: Path) -> Admin:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    return Admin(make_topology(nics=NICS), root)


def grouped(admin: Admin, members: str = "net0,net1") -> None:
    admin.ok("create-ip", "net0")
    admin.ok("create-ip", "net1")
    admin.ok("create-ipmp", "-i", members, "ipmp0")


def test_the_documented_order(admin: Admin) -> None:
    grouped(admin)
    assert admin.stored()["ipmp0"]["ipmp"] is True
    assert {n: admin.stored()[n]["group"] for n in NICS} == {"net0": "ipmp0", "net1": "ipmp0"}
    # Oracle, "How to Configure an Active-Active IPMP Group": the generated addrobj is printed.
    assert admin.ok("create-addr", "-a", "192.0.2.10/24", "ipmp0") == "ipmp0/v4\n"
    first = admin.holders("192.0.2.10")
    assert len(first) == 1 and first[0][1] == f"{first[0][0]}:1"
    assert admin.ok("create-addr", "-T", "static", "-a", "192.0.2.11/24", "ipmp0") == "ipmp0/v4a\n"
    second = admin.holders("192.0.2.11")
    assert len(second) == 1 and second[0][0] != first[0][0]  # the member with the fewest
    db = admin.db()
    assert "_ifname=ipmp0;_family=2;_ifclass=1;\n" in db
    assert "_ifname=ipmp0;_underif=net0;\n_ifname=ipmp0;_underif=net1;\n" in db
    assert "_ifname=ipmp0;_aobjname=ipmp0/v4;_ipv4addr=192.0.2.10,;\n" in db
    admin.ok("delete-addr", "ipmp0/v4")
    assert admin.holders("192.0.2.10") == []
    assert "ipmp0/v4;" not in admin.db()
    admin.ok("remove-ipmp", "-i", first[0][0], "ipmp0")
    assert admin.stored()[first[0][0]]["group"] == ""
    assert "_underif=" + first[0][0] not in admin.db()
    assert [h[0] for h in admin.holders("192.0.2.11")] == [second[0][0]]


def test_a_removed_member_hands_its_addresses_to_the_other(admin: Admin) -> None:
    grouped(admin)
    admin.ok("create-addr", "-a", "192.0.2.10/24", "ipmp0")
    (holder, _), = admin.holders("192.0.2.10")
    other = next(n for n in NICS if n != holder)
    admin.ok("remove-ipmp", "-i", holder, "ipmp0")
    assert [h[0] for h in admin.holders("192.0.2.10")] == [other]


def test_a_test_address_on_a_member_is_deprecated(admin: Admin) -> None:
    grouped(admin)
    assert admin.ok("create-addr", "-a", "192.0.2.50/24", "net0") == "net0/v4\n"
    (addr,) = [a for a in admin.addresses4("net0") if a["local"] == "192.0.2.50"]
    assert addr["deprecated"] and addr["label"] == "net0"


@pytest.mark.parametrize(("args", "message"), [
    (("add-ipmp", "-i", "net9", "ipmp0"), "ipadm: cannot add net9 to ipmp0: No such interface"),
    (("create-ipmp", "ipmp" + "0" * 28), "ipadm: cannot create interface ipmp" + "0" * 28
     + ": Invalid argument provided"),
    (("remove-ipmp", "-i", "net0", "ipmp0"),
     "ipadm: cannot remove net0 from ipmp0: Interface already in use"),
    (("add-ipmp", "-i", "ipmp0", "ipmp0"), "ipadm: cannot add ipmp0 to ipmp0: Invalid argument provided"),
    (("create-addr", "-a", "192.0.2.10/24", "ipmp0"), "ipadm: cannot create address: Address already in use"),
    (("create-addr", "-a", "192.0.2.12/24", "ipmp0/v4"),
     "ipadm: cannot create address: Address object already exists"),
    (("delete-ipmp", "ipmp0"), "ipadm: cannot delete IPMP interface ipmp0: IPMP group is not empty"),
])
def test_bad_input_changes_nothing(admin: Admin, args: tuple[str, ...], message: str) -> None:
    grouped(admin, "net0")
    admin.ok("create-addr", "-a", "192.0.2.10/24", "ipmp0")
    before = (admin.snapshot(), admin.state_file.read_text(), admin.db())
    proc = admin.ipadm(*args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", message + "\n")
    assert (admin.snapshot(), admin.state_file.read_text(), admin.db()) == before


def test_temporary_changes_stay_out_of_the_persistent_configuration(admin: Admin) -> None:
    admin.ok("create-ip", "-t", "net0")
    admin.ok("create-ip", "net1")
    assert "net0" not in admin.db()
    assert "_ifname=net1;_family=2;_ifclass=0;\n" in admin.db()
    admin.ok("create-ipmp", "-t", "ipmp0")
    admin.ok("add-ipmp", "-t", "-i", "net1", "ipmp0")
    assert admin.ok("create-addr", "-t", "-a", "192.0.2.10/24", "ipmp0") == "ipmp0/v4\n"
    assert admin.holders("192.0.2.10") == [("net1", "net1:1")]
    assert "ipmp0" not in admin.db()
    # libipadm: a persistent change of an object that is only active.
    proc = admin.ipadm("create-addr", "-a", "192.0.2.20/24", "net0")
    assert proc.returncode == 1
    assert proc.stderr == "ipadm: cannot create address: Persistent operation on temporary object\n"


def test_ipmp_boot_recreates_the_configuration_from_the_file(
    admin: Admin, make_topology: MakeTopology, tmp_path: Path
) -> None:
    grouped(admin)
    admin.ok("set-ifprop", "-p", "standby=on", "-m", "ip", "net1")
    admin.ok("create-addr", "-a", "192.0.2.10/24", "ipmp0")
    admin.ok("create-addr", "-a", "192.0.2.11/24", "ipmp0")
    assert [h[0] for a in ("192.0.2.10", "192.0.2.11") for h in admin.holders(a)] == ["net0", "net0"]
    # A fresh host with only the file: its boot.
    fresh = Admin(make_topology(nics=NICS), tmp_path / "fresh")
    (fresh.root / "etc/ipadm").mkdir(parents=True)
    (fresh.root / DB).write_text(admin.db())
    proc = fresh.boot()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "net0" in proc.stdout and "net1" in proc.stdout
    assert [h[0] for a in ("192.0.2.10", "192.0.2.11") for h in fresh.holders(a)] == ["net0", "net0"]
    stored = fresh.stored()
    assert stored["ipmp0"]["ipmp"] is True and stored["net1"]["standby"] is True
    assert {stored[n]["group"] for n in NICS} == {"ipmp0"}
    assert fresh.db() == admin.db()  # the boot does not rewrite the file
    # A second boot changes nothing.
    before = fresh.snapshot()
    assert fresh.boot().returncode == 0
    assert fresh.snapshot() == before


def test_ipmp_boot_refuses_a_nic_configured_both_ways(
    make_topology: MakeTopology, tmp_path: Path
) -> None:
    host = Admin(make_topology(nics=NICS), tmp_path / "both")
    (host.root / "etc/ipadm").mkdir(parents=True)
    (host.root / DB).write_text("_ifname=net0;_family=2;_ifclass=0;\n"
                                "_ifname=net0;_aobjname=net0/v4;_ipv4addr=192.0.2.10,;\n"
                                "_ifname=net0;_aobjname=net0/v4;prefixlen=24;\n"
                                "_ifname=net1;_family=2;_ifclass=0;\n")
    (host.root / "etc/hostname.net0").write_text("192.0.2.20/24 up\n")
    proc = host.boot()
    assert proc.returncode == 1
    assert f"{host.root / DB}:1:1: net0 is configured by hostname files too" in proc.stderr
    assert host.holders("192.0.2.10") == [] and host.holders("192.0.2.20") == []


def test_a_persistent_configuration_that_cannot_be_written_changes_nothing(admin: Admin) -> None:
    admin.ok("create-ip", "net0")
    admin.ok("create-addr", "-a", "198.51.100.7/24", "net0")
    # A directory where the new file is written: the write fails after the kernel change.
    (admin.root / "etc/ipadm/.ipadm.conf.tmp").mkdir()
    before = (admin.snapshot(), admin.state_file.read_text(), admin.db())
    proc = admin.ipadm("create-ipmp", "-i", "net0", "ipmp0")
    assert proc.returncode == 1
    assert proc.stderr.startswith("ipadm: ") and "ipadm.conf" in proc.stderr
    assert (admin.snapshot(), admin.state_file.read_text(), admin.db()) == before


def test_a_member_with_a_dhcp_lease_is_refused(admin: Admin) -> None:
    admin.ok("create-ip", "net0")
    admin.ok("create-ipmp", "ipmp0")
    # What a DHCP client leaves in the kernel: an address with a lifetime.
    proc = admin.sh("ip addr add 198.51.100.9/24 dev net0 valid_lft 600 preferred_lft 600")
    assert proc.returncode == 0, proc.stderr
    before = (admin.snapshot(), admin.state_file.read_text(), admin.db())
    proc = admin.ipadm("add-ipmp", "-i", "net0", "ipmp0")
    assert (proc.returncode, proc.stderr) == (
        1, "ipadm: cannot add net0 to ipmp0: Underlying interface has addresses managed by dhcpagent(1M)\n")
    assert (admin.snapshot(), admin.state_file.read_text(), admin.db()) == before


def test_disable_if_and_enable_if_leave_the_persistent_configuration_alone(admin: Admin) -> None:
    grouped(admin)
    admin.ok("create-addr", "-a", "192.0.2.10/24", "ipmp0")
    admin.ok("create-addr", "-a", "192.0.2.51/24", "net0")
    admin.ok("create-addr", "-a", "192.0.2.52/24", "net1")
    db = admin.db()
    (holder, _), = admin.holders("192.0.2.10")
    other = next(n for n in NICS if n != holder)
    test_address = "192.0.2.51" if holder == "net0" else "192.0.2.52"
    # Solaris: both are temporary only.
    assert admin.ipadm("disable-if", holder).stderr == \
        "ipadm: persistent operation not supported for disable-if\n"
    admin.ok("disable-if", "-t", holder)
    # ipmp_ill_deactivate: the data address goes to the member left; the
    # disabled one holds no address of its own any more.
    assert [h[0] for h in admin.holders("192.0.2.10")] == [other]
    assert admin.addresses4(holder) == []
    assert admin.stored().get(holder, {}).get("group", "") == ""
    assert admin.ok("show-if", "-p", "-o", "ifname,state", holder) == f"{holder}:disabled\n"
    assert admin.db() == db
    admin.ok("enable-if", "-t", holder)
    assert admin.stored()[holder]["group"] == "ipmp0"
    assert admin.ok("show-if", "-p", "-o", "ifname,class,over", "ipmp0") == "ipmp0:ipmp:net0 net1\n"
    (back,) = [a for a in admin.addresses4(holder) if a["local"] == test_address]
    assert back["deprecated"]
    assert len(admin.holders("192.0.2.10")) == 1
    assert admin.db() == db
    proc = admin.ipadm("enable-if", "-t", holder)
    assert (proc.returncode, proc.stderr) == (
        1, f"ipadm: cannot enable interface {holder}: Interface already exists\n")
