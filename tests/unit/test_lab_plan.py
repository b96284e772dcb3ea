"""What ipmp-lab builds for some boot files, and where labs may live."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ipmp.lab.errors import LabError
from ipmp.lab.plan import NetworkPlan, plan_network
from ipmp.lab.store import validate_name
from ipmp.lab.updown import create

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hostname.files"


def example(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root)
    return root


# -- plan_network ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "nics"),
    [
        ("active-active", ["qfe0", "qfe1"]),
        ("active-standby", ["qfe0", "qfe1"]),
        ("link-only", ["bge0", "bge1"]),
        ("single-line", ["hme0"]),
        ("test-on-unit0", ["ce0", "ce1"]),
    ],
)
def test_every_example_gets_its_nics_the_default_router_and_a_free_peer(name: str, nics: list[str]) -> None:
    plan = plan_network(EXAMPLES / name)
    assert list(plan.names) == nics
    assert plan.router4 == "192.0.2.1/24" and plan.router_from_files
    assert plan.peer4 == "192.0.2.254/24"
    assert plan.problems == ()
    assert plan.router6 is None and plan.peer6 is None


def test_the_plan_knows_groups_standby_test_and_data_addresses() -> None:
    plan = plan_network(EXAMPLES / "active-standby")
    qfe0, qfe1 = plan.nics
    assert (qfe0.group, qfe0.standby, qfe0.data_addresses, qfe0.test_addresses) == (
        "prod", False, ("192.0.2.100/24",), ("192.0.2.10/24",)
    )
    assert (qfe1.standby, qfe1.data_addresses, qfe1.test_addresses) == (True, (), ("192.0.2.11/24",))
    assert NetworkPlan.from_json(plan.to_json()) == plan


def test_without_defaultrouter_the_router_takes_the_lowest_free_address(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "defaultrouter").unlink()
    plan = plan_network(root)
    # 192.0.2.1 is still named "router" in hosts, so it is not free.
    assert plan.router4 == "192.0.2.2/24" and not plan.router_from_files
    assert plan.peer4 == "192.0.2.254/24"


def test_a_default_router_off_the_files_subnets_is_refused(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "defaultrouter").write_text("198.51.100.1\n")
    with pytest.raises(LabError, match="on none of the subnets"):
        plan_network(root)


def test_no_hostname_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with pytest.raises(LabError, match="no hostname"):
        plan_network(tmp_path)
    with pytest.raises(LabError, match="no etc directory"):
        plan_network(tmp_path / "nowhere")


def test_a_bad_file_is_left_for_ipmp_boot_to_report(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "hostname.qfe1").write_text("myhost-2 group prod up frobnicate\n")
    plan = plan_network(root)
    assert list(plan.names) == ["qfe0", "qfe1"]  # the NIC is still built
    assert len(plan.problems) == 1 and "frobnicate" in plan.problems[0]


def test_a_logical_interface_file_names_its_nic_once(tmp_path: Path) -> None:
    root = example("active-active", tmp_path)
    (root / "etc" / "hostname.qfe1:2").write_text("192.0.2.102 netmask + broadcast + up\n")
    plan = plan_network(root)
    assert list(plan.names) == ["qfe0", "qfe1"]
    assert "192.0.2.102/24" in plan.nic("qfe1").data_addresses
    assert plan.peer4 == "192.0.2.254/24"


@pytest.mark.parametrize("bad", ["", "..", "a/b", "x" * 41, "-x"])
def test_lab_names_are_checked(bad: str) -> None:
    with pytest.raises(LabError):
        validate_name(bad)


def test_labs_never_live_under_the_real_etc_or_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPMP_LAB_DIR", "/run/ipmp-lab-never")
    with pytest.raises(LabError, match="never live under the real /run"):
        create("x", EXAMPLES / "active-active")
    assert not Path("/run/ipmp-lab-never").exists()
