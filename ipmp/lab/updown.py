"""``ipmp-lab up`` and ``down``: build a lab from a directory of boot files and start its daemon; remove it.

Where and how addresses are chosen, :func:`ipmp.lab.plan.plan_network`;
what removing a lab does, :mod:`ipmp.lab.lab`.  The boot is the host's:
``ipmp-boot -R`` applies the hostname files and ``etc/ipadm/ipadm.conf``;
then an ipadm script (:mod:`ipmp.lab.ipadmplan`) is run command by command
in the host with the real ``ipadm``, ``svccfg`` and ``svcadm``, as an
administrator types them on Solaris 11, so its persistent changes are
written to the lab root's ``etc/ipadm/ipadm.conf``; its read-only commands
(``ipadm show-*``, ``ipmpstat``, ``svcprop``) run once in.mpathd is up.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ipmp.host.hostfiles import find_hostname_files
from ipmp.host.ipadm_db import DB_PATH
from ipmp.lab.addressing import unique_prefix
from ipmp.lab.errors import LabError
from ipmp.lab.ipadmplan import ScriptLine, find_script, parse_script
from ipmp.lab.lab import Lab, teardown
from ipmp.lab.plan import plan_network
from ipmp.lab.procs import Proc
from ipmp.lab.store import STATE_FILE, LabState, labs_dir, lock, private_dir, save_state, validate_name
from ipmp.lab.topology import Topology
from ipmp.lab.wiring import build
from ipmp.program import python_module

__all__ = ["DAEMON_START_TIMEOUT", "Progress", "create", "down", "list_labs"]

#: How long the daemon may take to open its control socket after start.
DAEMON_START_TIMEOUT = 15.0

Progress = Callable[[str], None]


def _copy_root(source: Path, root: Path, fdt_ms: int | None) -> None:
    """The lab root: a private copy of ``source/etc``.

    A copy, never the files themselves: ipmp-boot and in.mpathd write their
    state store under the root, and the drill edits etc/default/mpathd.
    Only ``etc`` is copied: it is all the product reads, and a stale ``run``
    left in the source by an earlier use as a root must not come along.
    Symlinks are copied as the files they point to, so nothing in the lab
    root leads back to a real /etc or /run; anything but plain files and
    directories (a FIFO would block the copy) is left out.
    """

    def special(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if not (os.path.isfile(os.path.join(directory, n))
                                         or os.path.isdir(os.path.join(directory, n)))]

    root.mkdir(mode=0o755)
    if (source / "etc").is_dir():
        shutil.copytree(source / "etc", root / "etc", ignore=special)
    else:  # an ipadm script alone: Solaris 11 starts from an empty /etc/ipadm
        (root / "etc").mkdir(mode=0o755)
    if fdt_ms is not None:
        dfl = root / "etc" / "default" / "mpathd"
        dfl.parent.mkdir(parents=True, exist_ok=True)
        old = dfl.read_text(errors="replace") if dfl.is_file() else ""
        # in.mpathd takes the first FAILURE_DETECTION_TIME= line (defread),
        # so a line on top overrides the file's own and keeps the rest.
        dfl.write_text(f"FAILURE_DETECTION_TIME={fdt_ms}\n{old}")


def _start_daemon(lab: Lab, quiet_period: float | None, scan_interval: float | None) -> None:
    extra: dict[str, str] = {}
    if quiet_period is not None:
        extra["IPMP_FAILURE_DETECTION_QP"] = repr(float(quiet_period))
    if scan_interval is not None:
        extra["IPMP_IF_SCAN_INTERVAL"] = repr(float(scan_interval))
    argv = [
        *python_module("ipmp.lab.logwrap", "--log", str(lab.log_path), "--"),
        *python_module("ipmp.cli.in_mpathd", "-d"),
    ]
    proc = lab.topology.run("host", argv, check=False, timeout=30.0, env=lab.command_env(extra))
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        doc = {"error": proc.stderr.strip() or "no report from the wrapper"}
    if proc.returncode != 0 or "error" in doc:
        raise LabError(f"cannot start in.mpathd: {doc.get('error')}")
    lab.state.wrapper = Proc(int(doc["wrapper_pid"]), doc.get("wrapper_start"))
    lab.state.daemon = Proc(int(doc["pid"]), doc.get("start"))
    save_state(lab.directory, lab.state)
    # Ready once its control socket exists (it opens it after the first
    # look at the kernel), as ifconfig and if_mpadm will need it.
    sock = lab.root / "run" / "ipmp" / "mpathd.sock"
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while not sock.exists():
        if not lab.state.daemon.alive():
            tail = "\n".join(text for _, text in lab.log_messages(last=10))
            raise LabError("in.mpathd exited at start-up" + (f":\n{tail}" if tail else ""))
        if time.monotonic() > deadline:
            raise LabError(f"in.mpathd did not open {sock} within {DAEMON_START_TIMEOUT:.0f} s")
        time.sleep(0.02)


#: The package's module for each command a script may hold.
_MODULES = {"ipadm": "ipmp.cli.ipadm", "svccfg": "ipmp.cli.svccfg", "svcadm": "ipmp.cli.svcadm",
            "svcprop": "ipmp.cli.svcprop", "ipmpstat": "ipmp.cli.ipmpstat"}


def _run_line(lab: Lab, line: ScriptLine, extra: dict[str, str] | None = None) -> tuple[int, str]:
    """One script command in the lab's host, on the lab root; its exit status and output."""
    argv = python_module(_MODULES[line.program], *line.words[1:])
    proc = lab.topology.run("host", argv, check=False, timeout=120.0, env=lab.command_env(extra))
    return proc.returncode, proc.stdout + proc.stderr


def run_script(lab: Lab, script: Path, lines: tuple[ScriptLine, ...], say: Progress) -> None:
    """The script's changes, in order; the first that fails stops the lab's ``up``.

    ``SUNW_NO_MPATHD``: ``ipadm create-ipmp -i`` starts in.mpathd when none
    runs (ifconfig's rule); the lab starts its own, logged one afterwards.
    """
    for line in lines:
        if not line.changes:
            continue
        say(line.text)
        rc, output = _run_line(lab, line, {"SUNW_NO_MPATHD": "1"})
        if rc != 0:
            raise LabError(f"{script}:{line.line}: '{line.text}' failed (exit {rc}):\n{output.rstrip()}")


def show_script(lab: Lab, lines: tuple[ScriptLine, ...]) -> str:
    """The script's read-only commands, run with in.mpathd up: ``$ command`` and its output each."""
    out = []
    for line in lines:
        if not line.changes:
            rc, output = _run_line(lab, line)
            status = "" if rc == 0 else f"   (exit {rc})"
            out.append(f"$ {line.text}{status}\n{output.rstrip()}")
    return "\n".join(out)


def create(
    name: str,
    source: Path,
    *,
    script: Path | None = None,
    fdt_ms: int | None = None,
    quiet_period: float | None = None,
    scan_interval: float | None = None,
    progress: Progress | None = None,
) -> Lab:
    """``ipmp-lab up``: build the lab, boot the files, start the daemon.

    Returns the lab, still locked by this process.  On any error or
    interrupt, everything created so far is removed before the exception
    propagates.
    """
    say = progress or (lambda _text: None)
    validate_name(name)
    source = source.resolve()
    if source == Path("/"):
        raise LabError("give a directory holding copies of the boot files (DIR/etc/hostname.*), not /")
    script = find_script(source, script.resolve() if script is not None else None)
    plan = plan_network(source, script)
    base = private_dir(labs_dir())
    directory = base / name
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        if not (directory / STATE_FILE).exists():
            # What an 'up' killed before its first write leaves (or one
            # starting right now): nothing of ours to remove.
            raise LabError(
                f"{directory} exists but holds no lab; if no ipmp-lab is running, remove it"
            ) from None
        raise LabError(
            f"lab {name!r} already exists ({directory}); remove it with 'ipmp-lab --name {name} down'"
        ) from None
    lock_fd: int | None = None
    topo: Topology | None = None
    state: LabState | None = None
    try:
        lock_fd = lock(directory, shared=False)
        prefix = unique_prefix("lab")
        namespaces = {role: f"{prefix}-{suffix}" for role, suffix in
                      (("host", "host"), ("switch", "sw"), ("router", "rt"), ("peer", "peer"))}
        state = LabState(
            name=name,
            prefix=prefix,
            source=str(source),
            root=str(directory / "root"),
            log=str(directory / "mpathd.log"),
            namespaces=namespaces,
            nics=list(plan.names),
            plan=plan.to_json(),
            created=datetime.datetime.now().isoformat(timespec="seconds"),
        )
        # Recorded before anything exists, so that 'down' finds the names
        # even if this process is killed half-way.
        save_state(directory, state)
        _copy_root(source, Path(state.root), fdt_ms)
        if fdt_ms is not None:
            state.plan = {**state.plan, "fdt_ms": fdt_ms}
        say(f"creating namespaces {prefix}-{{host,sw,rt,peer}}, NICs {', '.join(plan.names)}")
        try:
            topo = build(
                prefix,
                plan.names,
                router4=plan.router4,
                peer4=plan.peer4,
                router6=plan.router6,
                peer6=plan.peer6,
                extra_router_addrs=plan.extra_router,
                extra_peer_addrs=plan.extra_peer,
            )
        except ValueError as err:  # a NIC name the kernel refuses, and the like
            raise LabError(str(err)) from None
        # in.mpathd with no router to probe (a Solaris 11 script adds no default
        # route) pings the all-hosts group 224.0.0.1 and takes who answers
        # (in.mpathd(8)); Solaris hosts answer it, Linux ignores it by default.
        # The lab's router answers probes, so it answers those too.
        topo.run("router", ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/icmp_echo_ignore_broadcasts"])
        state.ports = dict(topo.ports)
        state.macs = dict(topo.macs)
        save_state(directory, state)
        lab = Lab(directory, state, topo, lock_fd, owner=True)

        root = Path(state.root)
        if find_hostname_files(root) or (root / DB_PATH).is_file():
            say(f"ipmp-boot -R {state.root}")
            boot = lab.run(python_module("ipmp.cli.boot", "-R", state.root), timeout=120.0)
            # The messages name the lab's copy; the user knows the originals.
            output = (boot.stdout + boot.stderr).replace(state.root, str(source))
            lab.boot_output = output
            if boot.returncode != 0:
                raise LabError(f"ipmp-boot failed (exit {boot.returncode}):\n{output.rstrip()}")
        lines: tuple[ScriptLine, ...] = ()
        if script is not None:
            # A private copy, as for the files: what ran is what the lab keeps.
            kept = directory / "ipadm.sh"
            shutil.copyfile(script, kept)
            lines = parse_script(kept.read_text(encoding="utf-8"), str(script))
            run_script(lab, script, lines, say)

        say("starting in.mpathd -d")
        _start_daemon(lab, quiet_period, scan_interval)
        if lines:
            lab.script_output = show_script(lab, lines).replace(state.root, str(source))
        state.status = "up"
        save_state(directory, state)
        # From here on the lab outlives this process ('down' deletes the namespaces).
        topo.release()
        return lab
    except BaseException as exc:
        try:
            if state is not None:
                # A topology that failed to build has already removed what
                # it made (and a name that existed before is not ours), so
                # namespaces are only deleted through a topology that built them.
                teardown(directory, state, topo)
            else:
                shutil.rmtree(directory, ignore_errors=True)
        except Exception as cleanup:  # keep the original error; say what is left
            exc.add_note(f"ipmp-lab: cleanup failed: {cleanup}")
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
        raise


def down(name: str) -> list[str]:
    """``ipmp-lab down``: remove the lab; notes worth telling the user."""
    with Lab.open(name) as lab:
        return lab.destroy()


def list_labs() -> list[Lab]:
    base = labs_dir()
    if not base.is_dir():
        return []
    labs = []
    for entry in sorted(base.iterdir()):
        if (entry / STATE_FILE).is_file():
            with contextlib.suppress(LabError):
                labs.append(Lab.open(entry.name, mode="none"))
    return labs
