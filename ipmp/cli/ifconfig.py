"""``ifconfig``: Solaris syntax and output on Linux.

The PLY grammar owns the whole argv (Solaris words such as ``-failover`` look
like options to any option parser), so this shell takes only its own leading
extensions before handing the rest over:

``--dry-run`` / ``-n``
    print the plan as ``ip`` commands (and the state-store facts as ``#``
    lines) and change nothing.  Solaris has no such option.
``--check IF``
    compare IF's hostname files (``hostname.IF``, ``hostname6.IF``, and the
    logical ones) with the kernel, as ``ipmp-boot --check`` does for all of
    them: print nothing and exit 0 when in sync; print the plan a boot of IF
    would carry out and exit 1 when not (or when a file has an error).
    IF may be named by its Solaris or its Linux name.
``--version``
    print the version.

Interface names: any name the kernel knows for a link (its Linux name or an
altname) is accepted; a NIC named in ``etc/ipmp/ifmap`` is shown and kept
under its Solaris name (``ipmp.host.ifmap``).

Exit status as Solaris: 0 on success, 1 on any error.

Imports are made in the functions that need them, not at the top, for the
start-up of the commands scripts call in loops (tests/unit/test_startup.py,
``python -m bench.run ifconfig``): a status read never loads what only a
change needs (the session, the planner, the kernel boundary, asyncio), nor
``pathlib``; and what it does load is imported after ``main`` turned the
garbage collector off, which at the top of the module it would not be.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

from ipmp import __version__
from ipmp.errors import IpmpError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from ipmp.admin.session import CommandResult
    from ipmp.config.commands import Command
    from ipmp.config.evaluate import Outcome
    from ipmp.linux.ops import Op
    from ipmp.model import Config

PROG = "ifconfig"


def _say_error(err: IpmpError | str) -> None:
    text = str(err)
    if not text.startswith((f"{PROG}:", "usage:")):
        text = f"{PROG}: {text}"
    print(text, file=sys.stderr)


def _status(config: Config, command: Command, is_root: bool) -> str:
    # After ``main`` disabled the collector (see the module docstring).
    from ipmp.config.addresses import split_name
    from ipmp.config.render import render
    from ipmp.model import Family

    family = command.family
    letters = command.all_letters or ""
    if "4" in letters and "6" not in letters:
        family = Family.INET
    elif "6" in letters and "4" not in letters:
        family = Family.INET6
    # ether only for root and only when no family was given (§4.6).
    show_ether = is_root and family is None
    if command.ifname is None:
        return render(config, family=family, only_up="u" in letters, only_down="d" in letters,
                      show_ether=show_ether)
    base, unit = split_name(command.ifname)
    return render(config, ifname=base, unit=unit, family=family, show_ether=show_ether)


async def _run(command: Command, root: Path, dry_run: bool) -> int:
    """A command with action words, or ``--dry-run``: ``ipmp.admin.command``, then print."""
    # Here, not at the top: the write path's modules (the session, the
    # planner, the kernel boundary) would cost every status read (test_startup).
    from ipmp.admin.command import change

    is_root = os.geteuid() == 0
    result, names = await change(command, root, dry_run)
    return _report(result, command, root, dry_run, names.op, is_root)


def _show(command: Command, root: str) -> int:
    """A command without action words: read and print (``ipmp.admin.status``).

    The read path of the commands scripts call in loops: no event loop, no
    pyroute2, not ``ipmp.admin.session``, and the root a string, not a ``Path``
    (tests/unit/test_startup.py).
    """
    # After ``main`` disabled the collector (see the module docstring).
    from ipmp.admin.status import show
    from ipmp.errors import ApplyError, ConfigError
    from ipmp.host.ifmap import usable_entries

    try:
        outcome = show(root, command, usable_entries(root))
    except (ConfigError, ApplyError) as err:
        _say_error(err)
        return 1
    if outcome is None:
        # A read the kernel view cannot answer alone: the write path's modules.
        import asyncio
        from pathlib import Path

        return asyncio.run(_run(command, Path(root), False))
    return _print_outcome(outcome, outcome.config, command, root, os.geteuid() == 0)


def _report(result: CommandResult, command: Command, root: Path, dry_run: bool,
            linux_op: Callable[[Op], Op], is_root: bool) -> int:
    """Print what a command did (or would do) and choose the exit status."""
    if not dry_run:
        return _print_outcome(result.outcome, result.config, command, root, is_root)
    from ipmp.linux.ops import command as op_line  # --dry-run only: the planner's module

    for line in result.outcome.stderr:
        _say_error(line)
    for op in result.plan:
        print(op_line(linux_op(op)))
    for note in result.notes:
        print(note)
    return 0


def _print_outcome(outcome: Outcome, config: Config | None, command: Command, root: str | Path,
                   is_root: bool) -> int:
    """Print what a command did and the status it asks for; choose the exit status."""
    from ipmp.config.commands import Command  # after gc.disable() (module docstring)

    for line in outcome.stderr:
        _say_error(line)
    for line in outcome.stdout:
        print(line)
    if outcome.start_mpathd and "SUNW_NO_MPATHD" not in os.environ:
        from ipmp.admin.command import start_mpathd  # only after ``group NAME``: see ``_run``

        start_mpathd(root)
    if config is None:
        return 0
    if command.ifname is None and not command.actions:
        sys.stdout.write(_status(config, command, is_root))
    for name in outcome.status:
        sub = Command(name, command.family, (), command.position)
        text = _status(config, sub, is_root)
        if not text:
            # A NIC with no family plumbed is unknown to Solaris IP (§4.4).
            _say_error(f"status: SIOCGLIFFLAGS: {name}: no such interface")
            return 1
        sys.stdout.write(text)
    return 0


async def _check(ifname: str, root: Path) -> int:
    """``--check IF``: print what a boot of IF's files would do; 0 in sync, 1 not."""
    # The write path's modules: see ``_run``.
    from ipmp.admin.bootfiles import plan_lines
    from ipmp.admin.command import check

    found = await check(ifname, root)
    for linux_name, solaris in found.altnames:
        print(f"ip link property add dev {linux_name} altname {solaris}")
    for line in plan_lines(found.result, found.names.op):
        print(line)
    for failure in found.result.failures:
        _say_error(failure.message)
    return 0 if found.in_sync else 1


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        # Run as the program, which lives for one command: the imports (the
        # data model, the parser, the evaluator; all of them made here, on
        # first use) create tens of thousands of objects and no garbage
        # cycle worth a collection, yet would trigger about twenty of them,
        # some milliseconds of a run that scripts repeat in loops (issue 15,
        # point 7).  Memory the command leaves in cycles goes back at exit.
        gc.disable()
    status = _main(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        # Run as the program: the process ends as soon as this returns.  The
        # interpreter's last garbage collection would still walk the many
        # thousands of objects the imports made, only to free memory the
        # kernel takes back anyway; that costs several milliseconds, more than
        # reading the kernel does.  Frozen objects are left out of it.
        gc.freeze()
    return status


def _main(args: list[str]) -> int:
    dry_run = False
    while args and args[0] in ("--dry-run", "-n"):
        dry_run = True
        args.pop(0)
    if args[:1] == ["--version"]:
        print(f"{PROG} (ipmp) {__version__}")
        return 0
    if args[:1] == ["--check"]:
        # The write path's modules, after gc.disable() (module docstring).
        from ipmp.host.altroot import root_path

        if len(args) != 2 or dry_run:
            _say_error("usage: ifconfig --check interface")
            return 1
        try:
            import asyncio  # the write path's (module docstring)

            return asyncio.run(_check(args[1], root_path(None)))
        except IpmpError as err:
            _say_error(err)
            return 1
    # After gc.disable() (module docstring).
    from ipmp.config.parse import parse_argv
    from ipmp.errors import ParseError
    from ipmp.host.altroot import root_dir, root_path

    try:
        command = parse_argv(args)
    except ParseError as err:
        _say_error(err)
        return 1
    try:
        if not command.actions and not dry_run:
            return _show(command, root_dir(None))
        import asyncio  # a change: the write path's (module docstring)

        return asyncio.run(_run(command, root_path(None), dry_run))
    except IpmpError as err:
        _say_error(err)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
