"""``python -m ipmp.data``: where the shipped files are, and installing them.

::

    python -m ipmp.data systemd                 print the directory of the unit files
    python -m ipmp.data man                     print the directory of the manual pages
    python -m ipmp.data install-units DIR [--bindir BINDIR]
                                                write the units into DIR (e.g. /etc/systemd/system),
                                                ExecStart pointing at BINDIR (default: this
                                                installation's commands)
    python -m ipmp.data install-man DIR         copy the pages to DIR/man5 and DIR/man8
                                                (e.g. /usr/local/share/man)
    python -m ipmp.data install-default DIR     write DIR/mpathd with in.mpathd's defaults
                                                (e.g. /etc/default), never over an existing one

Each install prints the files it wrote.  Exit status 0, 1 on an error, 2 on
a usage error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ipmp import data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipmp.data", description="ipmp's shipped files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("systemd", help="print the directory of the systemd units")
    sub.add_parser("man", help="print the directory of the manual pages")
    units = sub.add_parser("install-units", help="write the systemd units into DIR")
    units.add_argument("dir", type=Path)
    units.add_argument("--bindir", type=Path, default=None,
                       help="where the commands are (default: this installation's scripts)")
    pages = sub.add_parser("install-man", help="copy the manual pages into DIR/man5 and DIR/man8")
    pages.add_argument("dir", type=Path)
    default = sub.add_parser("install-default",
                             help="write DIR/mpathd (in.mpathd's defaults) unless DIR/mpathd exists")
    default.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "install-default":
            from ipmp.data.defaults import install_mpathd_default

            written = install_mpathd_default(args.dir)
            print(written if written else f"{args.dir / 'mpathd'}: exists; left as it is")
        elif args.command == "systemd":
            print(data.systemd_dir())
        elif args.command == "man":
            print(data.man_dir())
        elif args.command == "install-units":
            args.dir.mkdir(parents=True, exist_ok=True)
            for name in data.UNITS:
                target = args.dir / name
                target.write_text(data.unit_text(name, args.bindir), encoding="utf-8")
                target.chmod(0o644)
                print(target)
        else:
            for page in data.man_pages():
                section = args.dir / f"man{page.suffix[1:]}"
                section.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(page, section / page.name)
                (section / page.name).chmod(0o644)
                print(section / page.name)
    except OSError as err:
        print(f"python -m ipmp.data: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
