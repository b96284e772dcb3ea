"""What may import what, read from the source of every module under ``ipmp/``.

The rules ARCHITECTURE.md states ("Rules"):

* The pure core does no I/O and never reads the clock (``now`` is an
  argument): it imports no socket, event loop, process, poll or lock module,
  not ``time`` nor ``logging``, not the kernel boundary (``ipmp.kernel``),
  the state store (``ipmp.host.state``) or the executor (``ipmp.apply``), and no
  module of ours that imports any of them, however deep.  ``os`` is not
  forbidden along the way: ``ipmp.host.altroot`` names files under the root with
  it, which is string work, and telling its file functions from its path
  functions is beyond an import check; a pure module itself still does not
  import it.
* Nothing imports ``ipmp.cli`` but ``ipmp.cli``: only the shells print and
  map errors to exit codes, and a module that needed one would drag the
  argument parsing of a command into the daemon or the library.
* The pure Solaris side (``ipmp.config``) and the pure Linux side
  (``ipmp.linux``) import, of ours, only each other in one direction and
  the shared vocabulary (``ipmp.model``, ``ipmp.errors``): the Linux view
  of a configuration reads the Solaris one, never the other way round, and
  neither reaches the files under the root (``ipmp.host``), the kernel, the
  commands or the daemon.  A file name they need is passed in, as text.
* Only ``ipmp.kernel`` imports pyroute2: the kernel boundary has one owner,
  and the read paths of ``ifconfig`` stay fast (pyroute2 alone costs more
  than ``ifconfig -a`` may take).

Which modules are pure is what each says of itself: a docstring paragraph
that starts with "Pure module" or "Pure:".  The modules ARCHITECTURE.md names as the
core must say so, so that deleting the sentence does not exempt a module.

Every import counts: at module level and inside functions (a deferred import
runs too, only later), and ``__import__("name")``.  Imports under ``if
TYPE_CHECKING:`` never run, so they count for what a module depends on (the
``cli`` and pyroute2 rules) but not for what it loads (purity).  The checker
is tried on a small tree of deliberate offences first, so that a checker that
finds nothing cannot pass for a tree that breaks nothing.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ipmp"

#: What the pure core may not load, directly or through a module of ours.
IO_MODULES = frozenset({
    "socket", "_socket", "asyncio", "subprocess", "pyroute2", "select", "selectors", "fcntl",
    "ipmp.kernel", "ipmp.host.state", "ipmp.apply",
    "time",  # the clock: ``now`` is an argument
    "logging",  # the core returns messages, it never logs
})
#: What a pure module may not import itself either (see the module docstring).
IO_MODULES_DIRECT = frozenset({"os"})
#: The core ARCHITECTURE.md names (with the codecs of both sides): each must call itself pure.
CORE = frozenset({
    "ipmp.model", "ipmp.config.keywords", "ipmp.config.commands", "ipmp.config.parse", "ipmp.config.evaluate",
    "ipmp.config.addresses", "ipmp.config.folder", "ipmp.config.handlers", "ipmp.config.unit_words",
    "ipmp.config.link_words", "ipmp.config.syntax", "ipmp.config.grammar", "ipmp.linux.desired",
    "ipmp.config.render", "ipmp.linux.view", "ipmp.linux.ops", "ipmp.linux.plan",
    "ipmp.mpathd.settings", "ipmp.mpathd.probe", "ipmp.mpathd.steps",
    "ipmp.mpathd.failover", "ipmp.mpathd.machine", "ipmp.mpathd.stats", "ipmp.mpathd.events",
    "ipmp.mpathd.phyint", "ipmp.mpathd.core", "ipmp.mpathd.actions", "ipmp.mpathd.detection",
    "ipmp.mpathd.tracking", "ipmp.mpathd.snapshot",
    "ipmp.mpathd.codes", "ipmp.mpathd.protocol", "ipmp.kernel.decode", "ipmp.config.bootsteps",
    "ipmp.config.rescue",
})
#: Of the pure sides, what is not code of the core: the grammar tables' generator (it writes a
#: file) and the tables it generates (data).
SIDES_EXEMPT = frozenset({"ipmp.config.tablegen", "ipmp.config.grammar_tables"})
#: The shells.
CLI = frozenset({"ipmp.cli"})
#: The one package allowed to import pyroute2.
PYROUTE2_OWNER = frozenset({"ipmp.kernel"})
#: The pure sides, and what of ours each may import (typing-only imports count).
SIDES: dict[str, frozenset[str]] = {
    "ipmp.config": frozenset({"ipmp.config", "ipmp.model", "ipmp.errors"}),
    "ipmp.linux": frozenset({"ipmp.linux", "ipmp.config", "ipmp.model", "ipmp.errors"}),
}

_PURE = re.compile(r"^Pure(?: module)?[:.]", re.MULTILINE)
_TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _among(name: str, modules: frozenset[str]) -> bool:
    """``name`` is one of ``modules`` or inside one of them (``os.path`` is ``os``'s)."""
    return any(name == m or name.startswith(m + ".") for m in modules)


@dataclass(frozen=True)
class Import:
    """One import statement's target, as an absolute dotted name."""

    name: str
    line: int
    #: Under ``if TYPE_CHECKING:``: never executed.
    typing_only: bool


@dataclass(frozen=True)
class Tree:
    """The modules of one package tree: dotted name -> source file."""

    files: dict[str, Path]

    @classmethod
    def read(cls, package_dir: Path) -> Tree:
        files: dict[str, Path] = {}
        for path in sorted(package_dir.rglob("*.py")):
            parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
        return cls(files)

    def source(self, module: str) -> ast.Module:
        return ast.parse(self.files[module].read_text(encoding="utf-8"), str(self.files[module]))

    def declared_pure(self) -> frozenset[str]:
        return frozenset(m for m in self.files if _PURE.search(ast.get_docstring(self.source(m)) or ""))

    def imports(self, module: str) -> list[Import]:
        """Every import of ``module``, wherever it stands, with relative ones made absolute."""
        is_package = self.files[module].name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        found: list[Import] = []

        def add(name: str, node: ast.AST, typing_only: bool) -> None:
            found.append(Import(name, getattr(node, "lineno", 0), typing_only))

        def visit(node: ast.AST, typing_only: bool) -> None:
            if isinstance(node, ast.If) and ast.unparse(node.test) in _TYPE_CHECKING:
                for statement in node.body:
                    visit(statement, True)
                for statement in node.orelse:
                    visit(statement, typing_only)
                return
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, typing_only)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                add(base, node, typing_only)
                for alias in node.names:  # ``from ipmp.mpathd import ipc`` imports a module
                    if f"{base}.{alias.name}" in self.files:
                        add(f"{base}.{alias.name}", node, typing_only)
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "__import__" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    add(first.value, node, typing_only)
            for child in ast.iter_child_nodes(node):
                visit(child, typing_only)

        visit(self.source(module), False)
        return found

    def loads(self, name: str) -> list[str]:
        """The modules of this tree that importing ``name`` runs: it and its packages."""
        parts = name.split(".")
        return [m for m in (".".join(parts[:k]) for k in range(1, len(parts) + 1)) if m in self.files]

    def chain_to(self, start: str, forbidden: frozenset[str]) -> list[str] | None:
        """The shortest import chain from ``start`` to a forbidden module, or None.

        Follows what runs: every import of ours that is not typing-only, and
        the packages each one runs first.  A chain ends at the first
        forbidden name, inside this tree or outside it.
        """
        paths: dict[str, list[str]] = {}
        queue: list[str] = []
        for m in self.loads(start):
            paths[m] = [m]
            queue.append(m)
        while queue:
            module = queue.pop(0)
            for imp in self.imports(module):
                if imp.typing_only:
                    continue
                if _among(imp.name, forbidden):
                    return [*paths[module], f"{imp.name} (line {imp.line})"]
                for target in self.loads(imp.name):
                    if target not in paths:
                        paths[target] = [*paths[module], target]
                        queue.append(target)
        return None


def impurities(tree: Tree, pure: frozenset[str]) -> list[str]:
    """Each pure module that imports I/O itself or through a module of ours, with the chain."""
    found = []
    for module in sorted(pure):
        found += [f"{module}: imports {imp.name} (line {imp.line})" for imp in tree.imports(module)
                  if not imp.typing_only and _among(imp.name, IO_MODULES_DIRECT)]
        chain = tree.chain_to(module, IO_MODULES)
        if chain is not None:
            found.append(" -> ".join(chain))
    return found


def cli_importers(tree: Tree) -> list[str]:
    """Imports of the shells from outside them."""
    return [f"{module}: imports {imp.name} (line {imp.line})"
            for module in sorted(tree.files) if not _among(module, CLI)
            for imp in tree.imports(module) if _among(imp.name, CLI)]


def pyroute2_importers(tree: Tree) -> list[str]:
    """Imports of pyroute2 outside the kernel boundary."""
    return [f"{module}: imports {imp.name} (line {imp.line})"
            for module in sorted(tree.files) if not _among(module, PYROUTE2_OWNER)
            for imp in tree.imports(module) if _among(imp.name, frozenset({"pyroute2"}))]


def side_crossings(tree: Tree) -> list[str]:
    """Imports of ours from a pure side (``SIDES``) to a package it may not import."""
    return [f"{module}: imports {imp.name} (line {imp.line})"
            for side, allowed in SIDES.items()
            for module in sorted(tree.files) if _among(module, frozenset({side}))
            for imp in tree.imports(module)
            if _among(imp.name, frozenset({"ipmp"})) and imp.name != "ipmp" and not _among(imp.name, allowed)]


# -- the checker on deliberate offences ------------------------------------------

_OFFENCES = {
    "__init__.py": '"""The package."""\n',
    "errors.py": '"""Errors."""\n',
    "state.py": '"""The store."""\n',
    "lockfile.py": '"""A lock."""\nimport fcntl\n',
    "helper.py": '"""Not pure: it takes a lock."""\nfrom ipmp import lockfile\n',
    "core/__init__.py": '"""A subpackage."""\n',
    "core/clean.py": '"""Clean.\n\nPure module: no I/O.\n"""\nfrom . import sibling\n'
                     'from ..errors import X\n',
    "core/sibling.py": '"""Sibling.\n\nPure: nothing.\n"""\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n'
                       '    import asyncio\n',
    "core/deferred.py": '"""Deferred.\n\nPure module: no I/O.\n"""\n\ndef f():\n    import socket\n',
    "core/deep.py": '"""Deep.\n\nPure module: no I/O.\n"""\nfrom .. import helper\n',
    "core/stored.py": '"""Stored.\n\nPure module: no I/O.\n"""\nfrom ipmp.host.state import Store\n',
    "core/clock.py": '"""Clock.\n\nPure module: no I/O.\n"""\nfrom time import monotonic\n',
    "core/dunder.py": '"""Dunder.\n\nPure module.\n"""\n__import__("subprocess")\n',
    "core/osuser.py": '"""Os.\n\nPure module: no I/O.\n"""\nimport os.path\n',
    "cli/__init__.py": '"""Shells."""\n',
    "cli/other.py": '"""Another shell."""\n',
    "cli/tool.py": '"""A shell."""\nfrom ipmp.cli import other\nimport pyroute2\n',
    "talker.py": '"""Typing only still depends."""\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n'
                 '    from .cli import tool\n',
    "lazy.py": '"""Lazy."""\n\ndef g():\n    from pyroute2 import IPRoute\n',
    "kernel/__init__.py": '"""The owner."""\n',
    "kernel/execute.py": '"""Inside the owner."""\nimport pyroute2\n',
}


@pytest.fixture
def offences(tmp_path: Path) -> Tree:
    for name, text in _OFFENCES.items():
        path = tmp_path / "ipmp" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Tree.read(tmp_path / "ipmp")


def test_the_checker_finds_every_kind_of_offence(offences: Tree) -> None:
    pure = offences.declared_pure()
    assert pure == {"ipmp.core.clean", "ipmp.core.sibling", "ipmp.core.deferred", "ipmp.core.deep",
                    "ipmp.core.stored", "ipmp.core.clock", "ipmp.core.dunder", "ipmp.core.osuser"}
    found = impurities(offences, pure)
    assert found == [
        "ipmp.core.clock -> time (line 5)",
        "ipmp.core.deep -> ipmp.helper -> ipmp.lockfile -> fcntl (line 2)",
        "ipmp.core.deferred -> socket (line 7)",
        "ipmp.core.dunder -> subprocess (line 5)",
        "ipmp.core.osuser: imports os.path (line 5)",
        "ipmp.core.stored -> ipmp.host.state (line 5)",
    ], found
    # A typing-only import loads nothing; relative imports resolve.
    assert not [f for f in found if "clean" in f or "sibling" in f]
    clean = [i.name for i in offences.imports("ipmp.core.clean")]
    assert clean == ["ipmp.core", "ipmp.core.sibling", "ipmp.errors"]
    assert cli_importers(offences) == ["ipmp.talker: imports ipmp.cli (line 4)",
                                       "ipmp.talker: imports ipmp.cli.tool (line 4)"]
    assert pyroute2_importers(offences) == ["ipmp.cli.tool: imports pyroute2 (line 3)",
                                            "ipmp.lazy: imports pyroute2 (line 4)"]


# -- the rules on the real tree --------------------------------------------------


@pytest.fixture(scope="module")
def tree() -> Tree:
    return Tree.read(PACKAGE)


def test_the_core_says_it_is_pure(tree: Tree) -> None:
    assert sorted(CORE - tree.declared_pure()) == []
    # The tree was really read: the known I/O modules are there and not pure.
    io = {"ipmp.kernel.read", "ipmp.kernel.execute", "ipmp.kernel.request", "ipmp.kernel.watch",
          "ipmp.kernel.sysctl", "ipmp.host.state", "ipmp.apply", "ipmp.mpathd.runtime"}
    assert io <= set(tree.files)
    assert not io & tree.declared_pure()


def test_every_module_of_the_pure_sides_says_it_is_pure(tree: Tree) -> None:
    # The Solaris side and the Linux side are pure as wholes: a new module there is pure too,
    # or the checks above would not look at it.
    sides = {m for m in tree.files if _among(m, frozenset(SIDES))} - SIDES_EXEMPT
    assert {"ipmp.config.evaluate", "ipmp.linux.plan"} <= sides
    assert sorted(sides - tree.declared_pure()) == []


def test_the_pure_modules_import_no_io(tree: Tree) -> None:
    assert impurities(tree, tree.declared_pure()) == []


def test_nothing_imports_the_shells(tree: Tree) -> None:
    # The shells do import each other (``ipmp.cli.getopt``): that is inside.
    assert any(i.name == "ipmp.cli.getopt" for i in tree.imports("ipmp.cli.ipmpstat"))
    assert cli_importers(tree) == []


def test_only_the_kernel_boundary_imports_pyroute2(tree: Tree) -> None:
    assert any(i.name.startswith("pyroute2") for m in tree.files if _among(m, PYROUTE2_OWNER)
               for i in tree.imports(m))
    assert pyroute2_importers(tree) == []


_LOADED = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_pure_modules_load_no_io_at_run_time(tree: Tree) -> None:
    # The same rule as the interpreter sees it, standard library included (a
    # stdlib module that opens sockets is no import of ours): each pure module
    # in a fresh interpreter, without ``site`` (an editable install's import
    # hook loads modules of its own), against what the interpreter had already.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    runs = {module: subprocess.Popen([sys.executable, "-S", "-c", _LOADED.format(module=module)], cwd=REPO,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for module in sorted(tree.declared_pure())}
    loaded = {}
    for module, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, (module, err)
        loaded[module] = json.loads(out)
    assert all(module in names for module, names in loaded.items())
    # A module's own packages run first (``ipmp.kernel`` for its pure decoder);
    # what they import is checked above (``Tree.loads``), not their names.
    assert {module: [n for n in names if (n.split(".")[0] in IO_MODULES or n in IO_MODULES)
                     and not module.startswith(n + ".")]
            for module, names in loaded.items()} == {module: [] for module in loaded}


_SIDE_OFFENCES = {
    "__init__.py": '"""The package."""\n',
    "model.py": '"""The model."""\n',
    "host/__init__.py": '"""Files."""\n',
    "host/altroot.py": '"""The root."""\n',
    "config/__init__.py": '"""Solaris."""\n',
    "config/fine.py": '"""Fine."""\nfrom ipmp import model\nfrom ipmp.config import __init__\n',
    "config/root.py": '"""Names a file."""\n\ndef f():\n    from ipmp.host.altroot import root_file\n',
    "config/lean.py": '"""Leans on Linux."""\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n'
                      '    from ipmp.linux import view\n',
    "linux/__init__.py": '"""Linux."""\n',
    "linux/view.py": '"""Reads Solaris."""\nfrom ipmp.config import fine\nfrom ipmp.errors import E\n',
    "linux/daemon.py": '"""Asks the daemon."""\nimport ipmp.mpathd.control\n',
}


def test_the_side_checker_finds_each_crossing(tmp_path: Path) -> None:
    for name, text in _SIDE_OFFENCES.items():
        path = tmp_path / "ipmp" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert side_crossings(Tree.read(tmp_path / "ipmp")) == [
        "ipmp.config.lean: imports ipmp.linux (line 4)",
        "ipmp.config.lean: imports ipmp.linux.view (line 4)",
        "ipmp.config.root: imports ipmp.host.altroot (line 4)",
        "ipmp.linux.daemon: imports ipmp.mpathd.control (line 2)",
    ]


def test_the_pure_sides_import_only_each_other_one_way(tree: Tree) -> None:
    assert {"ipmp.config.evaluate", "ipmp.linux.view"} <= set(tree.files)
    assert side_crossings(tree) == []
