"""The option tables of the ``ipadm`` subcommands: letters, long names, usage lines.

Each subcommand has its own option table, as in the Solaris 11 ``ipadm.c``
(``process_misc_args``, ``process_misc_ipmpargs``, ``do_create_addr``,
``set_ifprop``, ``do_show_ifprop``, ``do_show_if``, ``do_show_addr``): the
same letter means different things in different subcommands (``-p`` is
"parsable" for ``show-if``/``show-addr`` but a property for
``set-ifprop``/``show-ifprop``, whose parsable is ``-c``).  Long options
(``--temporary``, ``--interface``, ...) name the same letters, from the
union of ``ipadm.c``'s ``*_longopts`` tables.  ``ipmp.config.ipadm_syntax``
scans a command line with them.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = [
    "PROG",
    "PROTOCOLS",
    "SUBCOMMANDS",
    "Spec",
    "long_letter",
    "usage_text",
]

PROG = "ipadm"

#: ``ipadm_str2proto`` (libipadm): the protocol names ``-m`` accepts.
PROTOCOLS = ("ip", "ipv4", "ipv6", "icmp", "tcp", "udp", "sctp")


class Spec(NamedTuple):
    """One subcommand's option table: getopt letters (``x:`` takes a value),
    the long names of those letters, and the usage line of ``ipadm.c``."""

    letters: str
    usage: str
    #: False: the optstring of ``do_show_if``/``do_show_addr`` has no leading
    #: ':', so a missing value is reported as an unrecognized option there.
    colon: bool = True


#: Long option name -> letter, the union of ``ipadm.c``'s ``*_longopts``
#: tables; a subcommand accepts a long option only for a letter of its own.
_LONG: Mapping[str, str] = {
    "temporary": "t",
    "interface": "i",
    "force": "f",
    "address": "a",
    "down": "d",
    "type": "T",
    "hostname": "h",
    "interface-id": "i",
    "wait": "w",
    "release": "r",
    "output": "o",
    "parsable": "p",  # 'c' for show-ifprop: see long_letter
    "prop": "p",
    "module": "m",
}

#: The subcommands, in ``ipadm.c``'s ``cmds[]`` order (the usage text lists
#: them so); usage strings as there, with their tabs and trailing newlines.
SUBCOMMANDS: Mapping[str, Spec] = {
    "create-ip": Spec("t", "\tcreate-ip\t[-t] <IP-interface>"),
    "delete-ip": Spec("", "\tdelete-ip\t<IP-interface>"),
    "create-ipmp": Spec("ti:", "\tcreate-ipmp\t[-t] [-i <under-interface>[,...]] ... <IPMP-interface>"),
    "delete-ipmp": Spec("f", "\tdelete-ipmp\t[-f] <IPMP-interface>"),
    "add-ipmp": Spec("ti:", "\tadd-ipmp\t[-t] -i <under-interface>[,...] "
                            "[-i interface,[...] ...] <IPMP-interface>"),
    "remove-ipmp": Spec("ti:", "\tremove-ipmp\t[-t] -i <under-interface>[,...] "
                               "[-i interface,[...] ...] <IPMP-interface>"),
    "disable-if": Spec("t", "\tdisable-if\t-t <interface>"),
    "enable-if": Spec("t", "\tenable-if\t-t <interface>"),
    "show-if": Spec("po:", "\tshow-if\t\t[[-p] -o <field>,...] [<interface>]\n", colon=False),
    "set-ifprop": Spec("m:p:t", "\tset-ifprop\t[-t] -p <prop>=<value[,...]> -m <protocol> <interface>"),
    "reset-ifprop": Spec("m:p:t", "\treset-ifprop\t[-t] -p <prop> -m <protocol> <interface>"),
    "show-ifprop": Spec("p:m:co:", "\tshow-ifprop\t[[-c] -o <field>,...] [-p <prop>,...]\n"
                                   "\t\t\t[-m <protocol>] [<interface>]\n"),
    "create-addr": Spec("T:a:dh:i:p:w:t", "\tcreate-addr\t[-t] [-T static] [-d] "
                                          "-a {local|remote}=addr[/prefixlen]\n"
                                          "\t\t\t\t<addrobj> | <interface>"),
    "delete-addr": Spec("r", "\tdelete-addr\t[-r] <addrobj>"),
    "show-addr": Spec("po:", "\tshow-addr\t[[-p] -o <field>,...] [<addrobj> | <interface>]\n",
                      colon=False),
}


def usage_text() -> str:
    """What ``usage()`` prints: the header, then every subcommand's usage."""
    lines = ["usage:  ipadm <subcommand> <args> ..."]
    lines.extend(spec.usage for spec in SUBCOMMANDS.values())
    return "\n".join(lines)


def long_letter(subcommand: str, name: str) -> str | None:
    """The letter the long option ``--name`` stands for in ``subcommand``; None if none."""
    if name == "parsable" and subcommand == "show-ifprop":
        return "c"  # show_ifprop_longopts: --parsable is -c there
    return _LONG.get(name)
