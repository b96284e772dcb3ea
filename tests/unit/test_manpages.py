"""The man pages: every keyword and option is documented, and groff formats them without warnings.

``man/ifconfig.8`` must have one ``.TP`` entry per word of ``ipmp.config.keywords.KEYWORDS``
under COMMANDS, its tag starting with the word in bold (``.B word``, ``.BR word ...``,
``.BI word ...`` or ``\\fBword\\fR ...``), so that adding a keyword without documenting
it fails here.  ``man/ipmp-boot.8`` must name every option of the ``ipmp-boot`` click
command in an OPTIONS tag.  The lint needs ``groff`` (Debian: ``apt-get install
groff-base``); without it that test is skipped, except under CI, where it fails.

The other commands' pages follow the same rule, with the options taken from the code:
``ipmp-lab`` from its click group (every subcommand also needs a bold ``.TP`` entry
under COMMANDS), ``in.mpathd``, ``if_mpadm`` and ``ipmpstat`` from the ``OPTIONS``
table each CLI module declares, itself checked against the module's parser.  Every
page in ``man/`` is linted, names the package version in ``.TH``, and the pages of
Solaris commands and files have a DIFFERENCES FROM SOLARIS section.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import click
import pytest

from ipmp import __version__
from ipmp.cli import boot, if_mpadm, in_mpathd, ipmpstat, lab
from ipmp.config.keywords import KEYWORDS

MAN = Path(__file__).resolve().parents[2] / "man"
PAGES = ("ifconfig.8", "ipmp-boot.8", "hostname.if.5", "in.mpathd.8", "if_mpadm.8", "ipmpstat.8",
         "ipmp-lab.8", "mpathd.5", "ipmp-boot-generator.8", "ipadm.8", "svccfg.8", "svcadm.8", "svcprop.8")
#: Pages of Solaris commands and files: each says where it departs from Solaris.
SOLARIS_PAGES = ("ifconfig.8", "ipmp-boot.8", "in.mpathd.8", "if_mpadm.8", "ipmpstat.8", "mpathd.5",
                 "ipadm.8", "svccfg.8", "svcadm.8", "svcprop.8")
REFUSED = "Recognised; refused on Linux:"
#: Our own ifconfig options (ipmp/cli/ifconfig.py parses them by hand, not with click).
IFCONFIG_OPTIONS = ("--dry-run", "-n", "--check", "--version")

_ENTRY_END = re.compile(r"^\.(TP|SH|SS|PP|LP|P|HP)\b")
_MACRO_ARG = re.compile(r'"((?:[^"]|"")*)"|(\S+)')
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
#: A hyphen that starts an option-like word must be written ``\-`` in roff.
_BARE_OPTION_HYPHEN = re.compile(r"(?<![\\\w-])-{1,2}[A-Za-z]")


def _page(name: str) -> str:
    return (MAN / name).read_text(encoding="ascii")


def _plain(roff: str) -> str:
    """Undo the roff escapes that may appear in a word or option name."""
    for escape, char in (("\\-", "-"), ("\\(dq", '"'), ("\\&", ""), ("\\|", ""), ("\\e", "\\")):
        roff = roff.replace(escape, char)
    return roff


def _section_name(line: str) -> str:
    return _plain(line[3:].strip().strip('"'))


def tp_entries(source: str) -> list[tuple[str, str, str]]:
    """``(section, tag line, body)`` of every ``.TP`` entry of a page."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = _section_name(line)
        if line.strip() != ".TP" or i + 1 >= len(lines):
            continue
        body: list[str] = []
        for following in lines[i + 2 :]:
            if _ENTRY_END.match(following):
                break
            body.append(following)
        entries.append((section, lines[i + 1], "\n".join(body)))
    return entries


def bold_word(tag: str) -> str | None:
    """The word a ``.TP`` tag line starts with in bold, or None."""
    text: str | None = None
    macro = re.match(r"^\.(B|BR|BI)\s+(.*)$", tag)
    if macro:
        args = _MACRO_ARG.match(macro.group(2))
        if args:
            text = args.group(1).replace('""', '"') if args.group(1) is not None else args.group(2)
    else:
        inline = re.match(r"^\\fB(.*?)\\f[RPI]", tag)
        if inline:
            text = inline.group(1)
    if text is None:
        return None
    words = _plain(text).split()
    return words[0] if words else None


def documented_commands(source: str) -> list[tuple[str, str]]:
    """``(word, body)`` for each bold ``.TP`` entry of the COMMANDS section."""
    out: list[tuple[str, str]] = []
    for section, tag, body in tp_entries(source):
        word = bold_word(tag)
        if section == "COMMANDS" and word is not None:
            out.append((word, body))
    return out


def option_tags(source: str, section: str = "OPTIONS") -> set[str]:
    """Every option name written in a ``.TP`` tag of ``section``."""
    found: set[str] = set()
    for sect, tag, _ in tp_entries(source):
        if sect == section:
            found.update(_OPTION.findall(_plain(tag)))
    return found


def click_option_names(command: click.Command) -> set[str]:
    """Every option string of a click command (help included), not of its subcommands."""
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    names.update(command.context_settings.get("help_option_names", ()))
    return names


def boot_option_names() -> set[str]:
    return click_option_names(boot.cli)


def _groff() -> str:
    path = shutil.which("groff")
    if path is None:
        message = "groff is not installed (apt-get install groff-base)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must lint the man pages")
        pytest.skip(message)
    return path


def _groff_warnings(groff: str, page: Path) -> str:
    proc = subprocess.run(
        [groff, "-man", "-ww", "-z", str(page)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    return (proc.stderr + (f"\nexit status {proc.returncode}" if proc.returncode else "")).strip()


# -- ifconfig(8) ----------------------------------------------------------------


def test_every_keyword_has_exactly_one_bold_tp_entry() -> None:
    counts = Counter(word for word, _ in documented_commands(_page("ifconfig.8")))
    missing = [kw.word for kw in KEYWORDS if counts[kw.word] == 0]
    doubled = sorted(word for word, n in counts.items() if n > 1)
    assert not missing, f"keywords without a .TP entry under COMMANDS in man/ifconfig.8: {missing}"
    assert not doubled, f"keywords documented twice in man/ifconfig.8: {doubled}"


def test_no_entry_for_a_word_that_is_not_a_keyword() -> None:
    words = {kw.word for kw in KEYWORDS}
    stale = sorted({word for word, _ in documented_commands(_page("ifconfig.8"))} - words)
    assert not stale, f"man/ifconfig.8 documents words that ipmp/config/keywords.py does not know: {stale}"


def test_unsupported_words_say_they_are_refused() -> None:
    bodies = dict(documented_commands(_page("ifconfig.8")))
    wrong = []
    for kw in KEYWORDS:
        body = " ".join(bodies.get(kw.word, "").split())
        if REFUSED in body and kw.supported:
            wrong.append(f"{kw.word} is supported but documented as refused")
        if REFUSED not in body and not kw.supported:
            wrong.append(f"{kw.word} is unsupported but its entry lacks {REFUSED!r}")
        elif not kw.supported and not body.split(REFUSED, 1)[1].strip():
            wrong.append(f"{kw.word}: no reason after {REFUSED!r}")
    assert not wrong, "\n".join(wrong)


def test_ifconfig_extensions_are_documented() -> None:
    source = (Path(__file__).resolve().parents[2] / "ipmp" / "cli" / "ifconfig.py").read_text()
    for option in IFCONFIG_OPTIONS:
        assert f'"{option}"' in source, f"ifconfig no longer has {option}: update IFCONFIG_OPTIONS"
    missing = set(IFCONFIG_OPTIONS) - option_tags(_page("ifconfig.8"))
    assert not missing, f"man/ifconfig.8 OPTIONS lacks {sorted(missing)}"


# -- ipmp-boot(8) ---------------------------------------------------------------


def test_every_boot_option_is_documented() -> None:
    names = boot_option_names()
    assert {"-R", "--root", "--dry-run", "-n", "--check", "--version"} <= names
    missing = names - option_tags(_page("ipmp-boot.8"))
    assert not missing, f"man/ipmp-boot.8 OPTIONS lacks {sorted(missing)}"


# -- in.mpathd(8), if_mpadm(8), ipmpstat(8): declared option tables ------------------


@pytest.mark.parametrize(("page", "module"), [
    ("in.mpathd.8", in_mpathd), ("if_mpadm.8", if_mpadm), ("ipmpstat.8", ipmpstat)])
def test_every_declared_option_is_documented(page: str, module: Any) -> None:
    options = set(module.OPTIONS)
    assert "--version" in options
    missing = options - option_tags(_page(page))
    assert not missing, f"man/{page} OPTIONS lacks {sorted(missing)}"


def test_option_tables_are_the_parsers() -> None:
    # The getopt letters of the two Solaris-style parsers, plus their long options.
    for module, long in ((if_mpadm, {"--version"}), (ipmpstat, {"--json", "--version"})):
        letters = {f"-{c}" for c in module.OPTSTRING if c != ":"}
        assert set(module.OPTIONS) == letters | long, module.__name__
    assert set(in_mpathd.OPTIONS) == {f"-{c}" for c in in_mpathd.OPTSTRING if c != ":"} | set(
        in_mpathd.LONG_OPTIONS)


def test_in_mpathd_accepts_every_declared_option(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(in_mpathd, "run", lambda **kwargs: 0)
    for option in in_mpathd.OPTIONS:
        argv = [option, "1"] if option == "-D" else [option]
        assert in_mpathd.main(argv) == 0, option
    capsys.readouterr()
    assert in_mpathd.main(["-q"]) == 1  # and not everything


# -- ipmp-lab(8) -----------------------------------------------------------------


def test_every_lab_command_and_option_is_documented() -> None:
    source = _page("ipmp-lab.8")
    commands = {word for word, _ in documented_commands(source)}
    assert set(lab.cli.commands) - commands == set(), "man/ipmp-lab.8 COMMANDS lacks some"
    names = click_option_names(lab.cli) | {"--version"}
    for command in lab.cli.commands.values():
        names |= click_option_names(command)
    assert {"--name", "-n", "--fdt", "--quiet-period", "--link", "--silent", "--json", "--svg"} <= names
    missing = names - option_tags(source)
    assert not missing, f"man/ipmp-lab.8 OPTIONS lacks {sorted(missing)}"


# -- all pages ------------------------------------------------------------------


def test_every_page_is_checked() -> None:
    on_disk = sorted(p.name for p in MAN.iterdir() if p.suffix in (".5", ".8"))
    assert on_disk == sorted(PAGES), "add new pages to PAGES"


@pytest.mark.parametrize("name", PAGES)
def test_page_names_the_package_version(name: str) -> None:
    th = next(line for line in _page(name).splitlines() if line.startswith(".TH "))
    assert _MACRO_ARG.findall(th[4:])[3][0] == f"ipmp {__version__}"


@pytest.mark.parametrize("name", SOLARIS_PAGES)
def test_solaris_pages_say_how_they_differ(name: str) -> None:
    sections = [_section_name(line) for line in _page(name).splitlines() if line.startswith(".SH")]
    assert "DIFFERENCES FROM SOLARIS" in sections


@pytest.mark.parametrize("name", PAGES)
def test_title_matches_file_name(name: str) -> None:
    th = next(line for line in _page(name).splitlines() if line.startswith(".TH "))
    title, section = _MACRO_ARG.findall(th[4:])[:2]
    stem, _, suffix = name.rpartition(".")
    assert _plain(title[0] or title[1]).lower() == stem
    assert (section[0] or section[1]) == suffix


@pytest.mark.parametrize("name", PAGES)
def test_option_hyphens_are_escaped(name: str) -> None:
    bare = [
        f"{name}:{n}: {line}"
        for n, line in enumerate(_page(name).splitlines(), start=1)
        if not line.startswith('.\\"') and _BARE_OPTION_HYPHEN.search(line)
    ]
    assert not bare, "write option hyphens as \\- :\n" + "\n".join(bare)


@pytest.mark.parametrize("name", PAGES)
def test_groff_formats_page_without_warnings(name: str) -> None:
    groff = _groff()
    warnings = _groff_warnings(groff, MAN / name)
    assert not warnings, f"groff -man -ww -z man/{name}:\n{warnings}"


# -- the checks themselves can fail ---------------------------------------------


def test_a_missing_keyword_is_noticed() -> None:
    entries = "".join(f".TP\n\\fB{kw.word.replace('-', chr(92) + '-')}\\fR\nText.\n" for kw in KEYWORDS[1:])
    page = f".TH IFCONFIG 8\n.SH COMMANDS\n{entries}.SH OUTPUT\n.TP\n.B {KEYWORDS[0].word}\nNot here.\n"
    words = {word for word, _ in documented_commands(page)}
    assert KEYWORDS[0].word not in words
    assert {kw.word for kw in KEYWORDS[1:]} <= words


@pytest.mark.parametrize(
    ("tag", "word"),
    [
        (".B \\-failover", "-failover"),
        (".BR arp_ignore=1 \", \" arp_announce=2", "arp_ignore=1"),
        ('.BI "netmask " mask', "netmask"),
        ("\\fBall\\-zones\\fR", "all-zones"),
        ("\\fBether\\fR [\\fImac\\fR]", "ether"),
        ("\\fIaddress\\fR [\\fIdestination\\fR]", None),
    ],
)
def test_bold_word_of_a_tag(tag: str, word: str | None) -> None:
    assert bold_word(tag) == word


def test_a_bare_option_hyphen_is_noticed() -> None:
    assert _BARE_OPTION_HYPHEN.search(".B ipmp\\-boot --check")
    assert not _BARE_OPTION_HYPHEN.search(".B ipmp\\-boot \\-\\-check 2026-11-25 link-local")


def test_groff_reports_a_broken_page(tmp_path: Path) -> None:
    groff = _groff()
    page = tmp_path / "broken.8"
    page.write_text(".TH BROKEN 8\n.SH NAME\nbroken \\- a page\n.NOSUCHMACRO\n\\fBunclosed \\Q\n")
    assert _groff_warnings(groff, page)
