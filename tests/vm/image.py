"""Guest disks: a cached Debian root file system, then the project installed into a copy of it.

Three layers, each cached under ``cache_dir()`` and keyed by a hash of what
it is made of, so that a second run with the same inputs reuses it:

1. ``build_base``: ``mmdebstrap`` makes a Debian root file system (a tarball)
   from Debian's packages.  Key: the suite, the mirror and the mmdebstrap
   command line (the package list and every customisation hook are in it).
   About a minute.
2. ``python_dist``: the project wheel, built from the working tree, and its
   Python dependencies, downloaded from the package index as wheels for the
   guest's Python (all of them are pure Python).  Key of the dependencies:
   the requirement list; the wheel is rebuilt every time (seconds).
3. ``assemble``: the tarball unpacked, the wheel installed the way README's
   "Installing on a host" says (``python3 -m venv /opt/ipmp``, ``pip install``,
   ``python -m ipmp.data install-units``), the caller's files added, units
   enabled; then ``mkfs.ext4 -d`` makes a raw disk of it and the kernel and
   initrd are copied out for a direct ``-kernel`` boot.  Key: the base, the
   wheels' contents, the files and the commands.

A run never writes to a cached disk: ``guest`` boots a qcow2 overlay in the
run's own directory.  Every step writes under a temporary name in the cache
and renames the result into place, so an interrupted build leaves no
half-made image that a later run would trust; the temporary paths are
removed (by exact path) on failure.

Needs root (the chroot, device nodes in the tarball), ``mmdebstrap`` and
``mkfs.ext4``; ``missing_tools`` says what is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASE_PACKAGES",
    "GUEST_PYTHON",
    "SUITE",
    "Disk",
    "GuestFile",
    "PythonDist",
    "apt_repository",
    "assemble",
    "build_base",
    "cache_dir",
    "guest_file",
    "guest_tree",
    "missing_tools",
    "python_dist",
    "tree_files",
]

REPO = Path(__file__).resolve().parents[2]
#: Debian 13.
SUITE = "trixie"
#: The guest's Python (trixie's python3), for which the dependency wheels are chosen.
GUEST_PYTHON = "3.13"
#: What the guest has besides the apt variant's essential set: systemd as init, the
#: kernel (and its initramfs-tools), Python with venv, and the tools the checks use.
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "linux-image-amd64",
    "python3",
    "python3-venv",
    "iproute2",
    "iputils-ping",
    "procps",
    "kmod",
)
#: Timers and services of a Debian install that only cost boot time in a test guest.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "fstrim.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "getty@tty1.service",
)
#: Modules the initramfs needs to mount the root file system: a virtio disk with ext4.
#: ``MODULES=list`` keeps the initramfs small (MODULES=most is ~37 MB), which the
#: emulated guest decompresses at every boot.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")
#: The raw disk's size (sparse; the root file system uses about 1 GB of it).
DISK_SIZE = 3 * 1024**3
#: Where the installed project lives in the guest (README: "python3 -m venv /opt/ipmp").
VENV = "/opt/ipmp"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def cache_dir() -> Path:
    """``$IPMP_VM_CACHE``, else ``.vm-cache`` in the checkout (ignored by git)."""
    configured = os.environ.get("IPMP_VM_CACHE")
    path = Path(configured) if configured else REPO / ".vm-cache"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # images hold a root file system; nobody else's business
    return path


def missing_tools() -> list[str]:
    """The tools this module needs that are not installed (with the Debian package that has them)."""
    wanted = {"mmdebstrap": "mmdebstrap", "mkfs.ext4": "e2fsprogs", "unshare": "util-linux",
              "qemu-img": "qemu-utils"}
    return [f"{tool} (apt-get install {pkg})" for tool, pkg in wanted.items() if shutil.which(tool) is None]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:16]


def _run(argv: Sequence[str], *, timeout: float, log: Log, cwd: Path | None = None,
         env: Mapping[str, str] | None = None) -> str:
    log("$ " + " ".join(argv))
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env=None if env is None else dict(env), stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"{argv[0]} did not finish in {timeout:g} s") from err
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
                           f"{done.stderr[-4000:]}")
    return done.stdout


def _tmp_prefix() -> str:
    """Temporary names carry the builder's pid, so that a later run knows whose they are."""
    return f".tmp-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_stale(directory: Path) -> None:
    """Remove what a builder that died (killed, power cut) left under a temporary name."""
    for entry in directory.iterdir():
        parts = entry.name.split("-", 2)
        if len(parts) == 3 and parts[0] == ".tmp" and parts[1].isdigit() and not _alive(int(parts[1])):
            _remove(entry)


def _remove(path: Path) -> None:
    """Remove a file or directory tree this module made (exact path)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# 1. The Debian root file system
# --------------------------------------------------------------------------


def _customize_hooks() -> list[str]:
    """mmdebstrap ``--customize-hook`` shell snippets (``$1`` is the root directory)."""
    modules = "\\n".join(INITRAMFS_MODULES)
    return [
        'echo ipmp-vm > "$1/etc/hostname"',
        # The root file system is the whole of /dev/vda; no fstab entry needed
        # but one that keeps systemd-remount-fs quiet.
        'echo "/dev/vda / ext4 rw,noatime 0 1" > "$1/etc/fstab"',
        'printf "MODULES=list\\n" > "$1/etc/initramfs-tools/conf.d/ipmp-vm.conf"',
        f'printf "{modules}\\n" >> "$1/etc/initramfs-tools/modules"',
        'chroot "$1" update-initramfs -u -k all',
        *[f'ln -sf /dev/null "$1/etc/systemd/system/{unit}"' for unit in MASKED_UNITS],
    ]


def build_base(*, suite: str = SUITE, packages: Sequence[str] = BASE_PACKAGES, log: Log = _quiet,
               timeout: float = 1200, variant: str = "debian") -> Path:
    """The cached root file system tarball for ``suite`` with ``packages``; built if absent.

    ``variant`` names a family of tarballs (e.g. one with more packages): a new
    build replaces older ones of its own family only.
    """
    mirror = os.environ.get("IPMP_VM_MIRROR", "")
    recipe = ["mmdebstrap", "--mode=root", "--format=tar", "--variant=apt", "--components=main",
              f"--include={','.join(packages)}", *(f"--customize-hook={hook}" for hook in _customize_hooks())]
    # The key is the recipe itself (the command line holds the package list and every hook).
    key = _digest(suite, mirror, *recipe)
    base = cache_dir() / "base"
    base.mkdir(exist_ok=True)
    target = base / f"{variant}-{suite}-{key}.tar"
    if target.is_file():
        log(f"base image: cached {target.name}")
        return target
    _reap_stale(base)
    tmp = base / f"{_tmp_prefix()}{target.name}"
    argv = [*recipe, suite, str(tmp), *([mirror] if mirror else [])]
    started = time.monotonic()
    try:
        _run(argv, timeout=timeout, log=log)
        os.replace(tmp, target)
    finally:
        _remove(tmp)
    log(f"base image: built {target.name} in {time.monotonic() - started:.0f} s")
    for old in base.glob(f"{variant}-{suite}-*.tar"):
        if old != target:
            _remove(old)  # an older recipe's: never used again
    return target


# --------------------------------------------------------------------------
# 2. The project wheel and its dependencies
# --------------------------------------------------------------------------

#: What the wheel is built from (as tests/test_packaging.py).
WHEEL_SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ipmp", "man")


@dataclass(frozen=True)
class PythonDist:
    """The project wheel and its dependencies' wheels, all in ``directory``."""

    directory: Path
    wheel: Path
    #: A hash of every wheel's contents (not of the zip bytes, which carry times).
    key: str


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        lines = whl.read(meta).decode().splitlines()
    return sorted(line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("Requires-Dist:") and "extra ==" not in line)


def _wheel_key(wheels: Iterable[Path]) -> str:
    parts: list[bytes] = []
    for wheel in sorted(wheels, key=lambda p: p.name):
        parts.append(wheel.name.encode())
        with zipfile.ZipFile(wheel) as whl:
            for name in sorted(whl.namelist()):
                if not name.endswith(".dist-info/RECORD"):
                    parts += [name.encode(), whl.read(name)]
    return _digest(*parts)


def python_dist(work: Path, *, log: Log = _quiet) -> PythonDist:
    """Build the project wheel from the working tree into ``work`` and add its dependencies."""
    src = work / "src"
    out = work / "wheels"
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    src.mkdir()
    for name in WHEEL_SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)], timeout=300, log=log,
         cwd=work, env=env)
    shutil.rmtree(src)
    (wheel,) = out.glob("ipmp-*.whl")
    requirements = _requirements(wheel)
    deps = cache_dir() / "wheels" / _digest(GUEST_PYTHON, "\n".join(requirements))
    if not deps.is_dir():
        deps.parent.mkdir(exist_ok=True)
        _reap_stale(deps.parent)
        tmp = deps.parent / f"{_tmp_prefix()}{deps.name}"
        try:
            # Pure-Python wheels for the guest's interpreter, whatever the host runs.
            _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                  "--dest", str(tmp), "--only-binary=:all:", "--python-version", GUEST_PYTHON,
                  "--implementation", "py", "--abi", "none", "--platform", "any", *requirements],
                 timeout=600, log=log, env=env)
            os.replace(tmp, deps)
        finally:
            _remove(tmp)
    for dep in deps.glob("*.whl"):
        shutil.copy2(dep, out / dep.name)
    key = _wheel_key(out.glob("*.whl"))
    log(f"python dist: {wheel.name} + {len(list(deps.glob('*.whl')))} dependencies, key {key}")
    return PythonDist(out, wheel, key)


# --------------------------------------------------------------------------
# 3. The disk of one configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestFile:
    """A file to put into the guest: its text and mode."""

    text: str
    mode: int = 0o644


def guest_file(path: Path) -> GuestFile:
    """A file of the checkout as a guest file: its text, 0755 if executable here, else 0644."""
    return GuestFile(path.read_text(encoding="utf-8"), 0o755 if os.access(path, os.X_OK) else 0o644)


def tree_files(directory: Path) -> dict[str, GuestFile]:
    """Every file under ``directory`` (``guest_files/<name>``) at the same path under the guest's /."""
    return {"/" + str(path.relative_to(directory)): guest_file(path) for path in sorted(directory.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


#: The guest programs' library (``ipmpvm.py`` in ``/usr/local/lib/ipmp-vm``): in every image.
GUEST_LIBRARY = REPO / "tests" / "vm" / "guest_files" / "common"


def guest_tree(directory: Path) -> dict[str, GuestFile]:
    """``tree_files(directory)`` with the guest programs' library beside it."""
    return {**tree_files(GUEST_LIBRARY), **tree_files(directory)}


@dataclass(frozen=True)
class Disk:
    """A bootable raw disk and the kernel and initrd to boot it with (``-kernel``)."""

    disk: Path
    kernel: Path
    initrd: Path


def _install_script(dist_dir: str, commands: Sequence[str]) -> str:
    """The README's installation, then the caller's commands (run in the chroot)."""
    return "\n".join([
        "set -eu",
        "cd /",
        f"python3 -m venv {VENV}",
        f"{VENV}/bin/pip install --quiet --disable-pip-version-check --no-index --find-links {dist_dir} "
        f"{dist_dir}/ipmp-*.whl",
        f"{VENV}/bin/python -m ipmp.data install-units /etc/systemd/system",
        f"{VENV}/bin/python -m ipmp.data install-man /usr/local/share/man",
        *commands,
        f"rm -rf {dist_dir}",
    ]) + "\n"


def _chroot(root: Path, script: str, *, log: Log) -> None:
    """Run ``script`` with the guest's own tools in ``root``.

    A private mount and PID namespace with its own /proc: nothing is left
    mounted on the host whatever happens (the namespace dies with the command).
    """
    # No pip cache left in the image; SYSTEMD_OFFLINE: systemctl enable works on the files only.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/var/tmp", "LC_ALL": "C.UTF-8",
           "PIP_NO_CACHE_DIR": "1", "SYSTEMD_OFFLINE": "1"}
    argv = ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root / 'proc'}",
            "chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
            "/bin/sh", "-c", script]
    _run(argv, timeout=600, log=log)


def _write_files(root: Path, files: Mapping[str, GuestFile]) -> None:
    for guest_path, spec in files.items():
        if not guest_path.startswith("/") or ".." in Path(guest_path).parts:
            raise ValueError(f"not an absolute guest path: {guest_path}")
        path = root / guest_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec.text, encoding="utf-8")
        os.chmod(path, spec.mode)


def _extract(base: Path, root: Path) -> None:
    # tar(1) keeps device nodes, owners and xattrs as mmdebstrap wrote them.
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf",
                    str(base)], check=True, timeout=600, stdin=subprocess.DEVNULL)


def _boot_files(root: Path) -> tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise RuntimeError(f"expected one kernel and one initrd in /boot: {kernels} {initrds}")
    return kernels[0], initrds[0]


def _commands_script(commands: Sequence[str]) -> str:
    """Only the caller's commands: for a disk without the wheel installed (the Debian package's)."""
    return "\n".join(["set -eu", "cd /", *commands]) + "\n"


def _tree_key(trees: Mapping[str, Path]) -> str:
    parts: list[bytes] = []
    for guest_dir, host_dir in sorted(trees.items()):
        parts.append(guest_dir.encode())
        for path in sorted(p for p in host_dir.rglob("*") if p.is_file()):
            parts += [str(path.relative_to(host_dir)).encode(), path.read_bytes()]
    return _digest(*parts)


def assemble(base: Path, dist: PythonDist | None, files: Mapping[str, GuestFile],
             commands: Sequence[str] = (), *, log: Log = _quiet, keep: int = 2,
             trees: Mapping[str, Path] | None = None) -> Disk:
    """The cached disk of ``base`` + the project + ``files``, then ``commands`` run in the chroot.

    ``files`` maps absolute guest paths to their contents; ``commands`` are
    shell lines run after the installation (e.g. ``systemctl enable X``).  The
    ``keep`` most recently used disks are kept, and any used within PRUNE_GRACE;
    older ones are removed.  With
    ``dist`` None the wheel is not installed (a disk for the Debian package,
    which the guest installs itself); ``trees`` maps guest directories to host
    directories copied there as they are (binary files: an apt repository).
    """
    trees = dict(trees or {})
    spec = json.dumps({p: [f.text, f.mode] for p, f in sorted(files.items())}, sort_keys=True)
    script = _install_script("D", commands) if dist is not None else _commands_script(commands)
    key = _digest(base.name, dist.key if dist is not None else "no-wheel", spec, "\n".join(commands), script,
                  *([_tree_key(trees)] if trees else []))
    images = cache_dir() / "images"
    images.mkdir(exist_ok=True)
    final = images / key
    disk = Disk(final / "disk.raw", final / "vmlinuz", final / "initrd.img")
    if disk.disk.is_file():
        log(f"disk: cached {key}")
        os.utime(final)
        return disk
    started = time.monotonic()
    _reap_stale(images)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix()}{key}.", dir=images))
    try:
        root = tmp / "root"
        root.mkdir()
        _extract(base, root)
        for guest_dir, host_dir in trees.items():
            if not guest_dir.startswith("/") or ".." in Path(guest_dir).parts:
                raise ValueError(f"not an absolute guest path: {guest_dir}")
            shutil.copytree(host_dir, root / guest_dir.lstrip("/"), dirs_exist_ok=True)
        _write_files(root, files)
        if dist is not None:
            dist_dir = "/var/tmp/ipmp-dist"
            shutil.copytree(dist.directory, root / dist_dir.lstrip("/"))
            _chroot(root, _install_script(dist_dir, commands), log=log)
        else:
            _chroot(root, _commands_script(commands), log=log)
        kernel, initrd = _boot_files(root)
        shutil.copy2(kernel, tmp / "vmlinuz")
        shutil.copy2(initrd, tmp / "initrd.img")
        raw = tmp / "disk.raw"
        with open(raw, "wb") as fh:
            fh.truncate(DISK_SIZE)
        _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", str(root), str(raw)],
             timeout=600, log=log)
        shutil.rmtree(root)
        os.replace(tmp, final)
    finally:
        _remove(tmp)
    log(f"disk: assembled {key} in {time.monotonic() - started:.0f} s")
    _prune(images, keep)
    return disk


def wheel_disk(work: Path, files: Mapping[str, GuestFile], commands: Sequence[str],
               timings: dict[str, float], *, log: Log = _quiet) -> Disk:
    """The base image, the wheel of the tree installed as README says, ``files`` and ``commands``.

    The steps every test of a wheel install takes, each timed into ``timings``.
    """
    mark = time.monotonic()
    base = build_base(log=log)
    timings["base image (mmdebstrap, or the cache)"] = time.monotonic() - mark
    mark = time.monotonic()
    dist = python_dist(work / "dist", log=log)
    timings["wheel and dependencies"] = time.monotonic() - mark
    mark = time.monotonic()
    disk = assemble(base, dist, files, commands, log=log)
    timings["disk (install into the image, mkfs; or the cache)"] = time.monotonic() - mark
    return disk


#: A disk used (assembled or reused) within this many seconds is never pruned: another
#: test of the same run, or a run beside it, may be about to boot it.
PRUNE_GRACE = 3 * 3600.0


def _prune(images: Path, keep: int) -> None:
    """Keep the ``keep`` most recently used disks, and every disk used within PRUNE_GRACE."""
    now = time.time()
    disks = sorted((p for p in images.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in disks[keep:]:
        if now - old.stat().st_mtime > PRUNE_GRACE:
            _remove(old)


# --------------------------------------------------------------------------
# A local apt repository (for the Debian package)
# --------------------------------------------------------------------------


def apt_repository(debs: Iterable[Path], directory: Path, *, log: Log = _quiet) -> Path:
    """A flat apt repository of ``debs`` in ``directory``: the files, ``Packages`` and ``Release``.

    What ``apt-ftparchive packages`` and ``release`` would write, made here
    so that the host needs only ``dpkg-deb``.  The guest names it in a
    ``file:`` source with ``trusted=yes``: it is baked into the image by the
    test, not fetched, so there is nothing to authenticate in transit.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stanzas: list[str] = []
    for deb in sorted(debs, key=lambda p: p.name):
        data = deb.read_bytes()
        (directory / deb.name).write_bytes(data)
        control = _run(["dpkg-deb", "-f", str(deb)], timeout=60, log=log).rstrip("\n")
        stanzas.append("\n".join([
            control,
            f"Filename: ./{deb.name}",
            f"Size: {len(data)}",
            f"SHA256: {hashlib.sha256(data).hexdigest()}",
        ]))
    packages = ("\n\n".join(stanzas) + "\n").encode()
    (directory / "Packages").write_bytes(packages)
    release = "\n".join([
        "Origin: ipmp-vm-test",
        "Label: ipmp-vm-test",
        # A fixed date: the disk's cache key is made of the repository's bytes.
        "Date: Thu, 01 Jan 2026 00:00:00 UTC",
        "SHA256:",
        f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages",
    ]) + "\n"
    (directory / "Release").write_text(release, encoding="utf-8")
    # apt reads a file: source as its unprivileged _apt user.
    os.chmod(directory, 0o755)
    for path in directory.iterdir():
        os.chmod(path, 0o644)
    return directory
