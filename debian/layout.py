#!/usr/bin/python3
"""Lay the Debian package out after pybuild installed the Python package (debian/rules).

What pybuild leaves is the ``ipmp`` package in ``usr/lib/python3/dist-packages``
and the console scripts of pyproject.toml in ``usr/bin``.  This puts every file where the
package's design says (debian/README.Debian):

* the commands as small ``python3 -I`` wrappers: daemons and the boot loader
  in ``usr/sbin`` (root's commands, as on Solaris' ``/usr/sbin`` and
  ``/usr/lib/inet``), ``ipmpstat`` and ``ipmp-lab`` in ``usr/bin``, and
  ``ifconfig`` in ``usr/lib/ipmp/bin``, off ``PATH``: net-tools owns
  ``/usr/sbin/ifconfig`` and ``ipmp-solaris-paths`` is the opt-in;
* pyroute2 0.9 from the pinned wheel in ``usr/lib/ipmp/vendor``, and
  ``ipmp/_vendor.py``, which ``ipmp/__init__.py`` imports to put that
  directory first on ``sys.path``;
* the systemd units as ``debian/ipmp.<unit>`` for dh_installsystemd, with
  ``ExecStart`` in ``/usr/sbin`` (rewritten by ``ipmp.data.unit_text``, the
  project's own rewrite, so the unit text is never forked);
* the manual pages of man/, ``ifconfig(8)`` as ``ifconfig.ipmp(8)``
  (net-tools ships ``ifconfig.8``);
* ``/etc/default/mpathd`` (a conffile) and the systemd generator, when the
  source tree has them.

Usage: ``debian/layout.py PACKAGE_DIR`` from the top of the source tree.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

VENDOR = "/usr/lib/ipmp/vendor"
PRIVATE_BIN = "/usr/lib/ipmp/bin"
SBIN = "/usr/sbin"
GENERATORS = "/usr/lib/systemd/system-generators"

#: (directory, command, module): every command of the package.
COMMANDS = (
    (SBIN, "in.mpathd", "ipmp.cli.in_mpathd"),
    (SBIN, "if_mpadm", "ipmp.cli.if_mpadm"),
    (SBIN, "ipmp-boot", "ipmp.cli.boot"),
    (SBIN, "ipadm", "ipmp.cli.ipadm"),
    # Solaris' places: /usr/sbin/svccfg, /usr/sbin/svcadm, /usr/bin/svcprop (only network/ipmp's property).
    (SBIN, "svccfg", "ipmp.cli.svccfg"),
    (SBIN, "svcadm", "ipmp.cli.svcadm"),
    ("/usr/bin", "svcprop", "ipmp.cli.svcprop"),
    ("/usr/bin", "ipmpstat", "ipmp.cli.ipmpstat"),
    ("/usr/bin", "ipmp-lab", "ipmp.cli.lab"),
    (PRIVATE_BIN, "ifconfig", "ipmp.cli.ifconfig"),
)
#: The systemd generator (systemd.generator(7)): a console script of pyproject.toml, not a command.
GENERATOR = ("ipmp-boot-generator", "ipmp.cli.generator")
UNITS = ("in.mpathd.service", "ipmp-boot.service")
#: Pages installed under another name than in man/ (see ``man``).
MAN_NAMES = {"ifconfig.8": "ifconfig.ipmp.8"}

# -I (isolated): no PYTHONPATH, no user site, not the script's directory on
# sys.path: root's commands import only what dpkg installed (see ipmp.program).
WRAPPER = '''#!/usr/bin/python3 -I
"""{command} of the ipmp Debian package: runs {module}."""
import sys

from {module} import main

sys.exit(main())
'''

VENDOR_MODULE = f'''"""Written by the Debian package's build (debian/layout.py), imported by ipmp/__init__.py.

Debian's python3-pyroute2 is the 0.7 series, without the AsyncIPRoute the
kernel module uses (ipmp/kernel/execute.py); the package carries pyroute2 0.9 in a
private directory.  It goes first on sys.path, so that a python3-pyroute2
installed for other software is never picked, and from here, because every
program of the package imports ipmp first: also those started as
``python3 -I -m`` (ipmp.program), which no PYTHONPATH reaches.
"""

import sys

VENDOR = "{VENDOR}"

if VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)
'''


def _under(pkg: Path, absolute: str) -> Path:
    return pkg / absolute.lstrip("/")


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _dist_packages(pkg: Path) -> Path:
    found = sorted(pkg.glob("usr/lib/python3*/dist-packages/ipmp/__init__.py"))
    if len(found) != 1:
        raise SystemExit(f"layout: expected one installed ipmp package under {pkg}, found {found}")
    return found[0].parent


def console_scripts(pkg: Path) -> dict[str, str]:
    """pyproject.toml's console scripts, as the installed dist-info lists them: name -> module."""
    found = sorted(_dist_packages(pkg).parent.glob("ipmp-*.dist-info/entry_points.txt"))
    scripts: dict[str, str] = {}
    section = ""
    for line in found[0].read_text(encoding="utf-8").splitlines() if found else ():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[console_scripts]" and "=" in line:
            name, _, target = line.partition("=")
            scripts[name.strip()] = target.strip().partition(":")[0]
    return scripts


def wrappers(pkg: Path) -> None:
    """Replace pybuild's scripts in usr/bin by the wrappers, each where it belongs."""
    known = {command: module for _, command, module in COMMANDS}
    known[GENERATOR[0]] = GENERATOR[1]
    for name, module in console_scripts(pkg).items():
        if known.get(name) != module:
            # A new command must get its place here, or it would be left out of the package.
            raise SystemExit(f"layout: console script {name} ({module}) has no place in debian/layout.py")
        _under(pkg, f"/usr/bin/{name}").unlink(missing_ok=True)
    for directory, command, module in COMMANDS:
        _write(_under(pkg, f"{directory}/{command}"), WRAPPER.format(command=command, module=module), 0o755)


def vendor(pkg: Path, debian: Path) -> None:
    """Unpack the wheel that debian/pyroute2.sha256 names, after checking its digest."""
    line = (debian / "pyroute2.sha256").read_text(encoding="ascii").split()
    digest, name = line[0], line[1]
    wheel = debian / "vendor" / name
    if not wheel.is_file():
        raise SystemExit(f"layout: {wheel} is missing: build with 'make deb', which downloads it")
    got = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if got != digest:
        # A wheel that is not the one reviewed never goes into a package run as root.
        raise SystemExit(f"layout: {wheel} has sha256 {got}, debian/pyroute2.sha256 says {digest}")
    target = _under(pkg, VENDOR)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            # The digest pins the wheel; still refuse a member that would land outside.
            if member.filename.startswith("/") or ".." in Path(member.filename).parts:
                raise SystemExit(f"layout: {wheel} holds {member.filename!r}")
        archive.extractall(target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    # dpkg records the files; the wheel's RECORD and INSTALLER name pip's view of them.
    for dist_info in target.glob("*.dist-info"):
        for stale in ("RECORD", "INSTALLER", "REQUESTED"):
            (dist_info / stale).unlink(missing_ok=True)
    _write(_dist_packages(pkg) / "_vendor.py", VENDOR_MODULE, 0o644)


def units(source: Path, debian: Path) -> None:
    sys.path.insert(0, str(source))
    from ipmp.data import unit_text

    for unit in UNITS:
        text = unit_text(unit, SBIN)
        if "/usr/local/" in text:
            raise SystemExit(f"layout: {unit} still names /usr/local after the rewrite")
        _write(debian / f"ipmp.{unit}", text, 0o644)


def man(source: Path, debian: Path, pkg: Path) -> None:
    """Every page of man/ into debian/man/ for dh_installman (debian/ipmp.manpages), two renamed.

    ``ifconfig.8`` becomes ``ifconfig.ipmp.8``: net-tools ships ``ifconfig.8``.
    ``hostname.if.5`` goes in place here: dh_installman would read the name as
    the page "hostname" in the language "if" (dh_compress compresses it).
    """
    for page in sorted((source / "man").glob("*.[58]")):
        text = page.read_text(encoding="utf-8")
        if page.name == "hostname.if.5":
            _write(_under(pkg, "/usr/share/man/man5/hostname.if.5"), text, 0o644)
        else:
            _write(debian / "man" / MAN_NAMES.get(page.name, page.name), text, 0o644)


def optional(source: Path, pkg: Path) -> None:
    """Files other parts of the tree provide once they exist."""
    default = source / "ipmp" / "data" / "default" / "mpathd"
    if default.is_file():
        # Every file under etc/ of a package is a conffile (debhelper, compat >= 3).
        _write(_under(pkg, "/etc/default/mpathd"), default.read_text(encoding="utf-8"), 0o644)
    if (source / "ipmp" / "cli" / "generator.py").is_file():
        name, module = GENERATOR
        _write(_under(pkg, f"{GENERATORS}/{name}"), WRAPPER.format(command=name, module=module), 0o755)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pkg = Path(argv[1])
    source = Path.cwd()
    debian = source / "debian"
    wrappers(pkg)
    _write(_under(pkg, f"{SBIN}/ipmp-solaris-paths"),
           (debian / "ipmp_solaris_paths.py").read_text(encoding="utf-8"), 0o755)
    vendor(pkg, debian)
    units(source, debian)
    man(source, debian, pkg)
    optional(source, pkg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
