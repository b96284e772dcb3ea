"""The ``ipadm`` command line: argv in, one typed ``IpadmCommand`` out.

The subset of Solaris 11 ``ipadm`` that IPMP administration needs:
``create-ip``, ``delete-ip``, ``create-ipmp``, ``delete-ipmp``, ``add-ipmp``,
``remove-ipmp``, ``disable-if``, ``enable-if``, ``create-addr``,
``delete-addr``, ``set-ifprop``, ``reset-ifprop``, ``show-ifprop``,
``show-if``, ``show-addr``, and the bare ``ipadm`` listing of Solaris 11.3
and 11.4 (ipadm(8), https://docs.oracle.com/cd/E88353_01/html/E72487/ipadm-8.html).

Options are scanned as ``getopt_long`` does in the Solaris 11 ``ipadm.c``,
each subcommand with its own table (``ipmp.config.ipadm_options``): letters
may be grouped, a value may be attached or the next word, long options
(``--temporary``, ``--interface``, ...) name the same letters, and options
may follow the operand (the libc ``getopt_long`` permutes; ``--`` ends the
options).

Errors carry the text and exit status ``ipadm.c`` prints: ``die`` (``ipadm:
<message>``, exit 1), ``die_opterr`` (``ipadm: unrecognized option '-x'``
or ``ipadm: option '-x' requires a value``, then ``usage: <usage>``), and
``usage`` for an unknown subcommand (``ipadm: unknown subcommand 'x'``,
then the usage of every subcommand, exit 1).

Deliberate differences from the Solaris 11.0 source, as Solaris 11.4 does
(ipadm(8)): ``create-addr`` without ``-T`` is ``-T static`` when ``-a`` is
given, and its operand may be an interface (the address object name is
chosen when the address is made, ``ipmp0/v4``, ``ipmp0/v4a``...);
``show-addr`` accepts an interface operand (``ipmp0`` as ``ipmp0/``).  An
unknown long option is named as given (``unrecognized option
'--verbose'``): the C code prints the NUL character there.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ipmp.config.ipadm_options import PROG, PROTOCOLS, SUBCOMMANDS, Spec, long_letter, usage_text

__all__ = [
    "IpadmCommand",
    "IpadmError",
    "parse_argv",
    "refusal",
]


class IpadmError(ValueError):
    """A refused ``ipadm`` command: ``message`` is the whole stderr line
    (``ipadm: cannot add net0 to ipmp0: ...``); ``status`` the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class IpadmCommand(NamedTuple):
    """One ``ipadm`` invocation, options folded in (the contract between the
    command line, the evaluator and the show tables)."""

    #: ``create-ipmp``, ``add-ipmp``, ...; "" for the bare ``ipadm`` listing.
    subcommand: str
    #: The interface, IPMP interface or address object operand; "" if none.
    operand: str = ""
    #: ``-t``: temporary, not written to the persistent configuration.
    temporary: bool = False
    #: ``-i IF[,IF]...`` (repeatable), in the order given.
    interfaces: tuple[str, ...] = ()
    #: ``-f`` (``delete-ipmp -f``).
    force: bool = False
    #: ``create-addr -a [local=]ADDR[/LEN]``, ``local=`` stripped.
    address: str = ""
    #: ``create-addr -T``; ``static`` when not given.
    addr_type: str = "static"
    #: ``set-ifprop -p NAME=VALUE``, ``reset-ifprop``/``show-ifprop -p NAME[,NAME]``
    #: (value None), in the order given.
    properties: tuple[tuple[str, str | None], ...] = ()
    #: ``-m PROTOCOL`` (``ip``, ``ipv4``, ``ipv6``); "" when not given.
    protocol: str = ""
    #: ``-o FIELD[,FIELD]``; None when not given.
    fields: tuple[str, ...] | None = None
    #: Parsable output (``show-if -p``, ``show-addr -p``, ``show-ifprop -c``).
    parsable: bool = False
    #: ``create-addr -a remote=ADDR`` (a point-to-point destination); "" if none.
    remote: str = ""
    #: ``create-addr -d``: create the address down (not IFF_UP).
    down: bool = False
    #: ``delete-addr -r``: release a DHCP lease.
    release: bool = False


def _die(message: str) -> IpadmError:
    # ipadm.c die(): "ipadm: " + message, exit EXIT_FAILURE.
    return IpadmError(f"{PROG}: {message}")


def _usage_error(spec: Spec) -> IpadmError:
    return _die(f"usage: {spec.usage}")


def _scan(subcommand: str, spec: Spec, args: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``getopt_long`` with permutation: (letter, value) pairs and the operands, in order.

    Raises:
        IpadmError: ``die_opterr``'s texts.
    """
    takes = {spec.letters[i]: spec.letters[i + 1:i + 2] == ":"
             for i in range(len(spec.letters)) if spec.letters[i] != ":"}
    options: list[tuple[str, str]] = []
    operands: list[str] = []

    def unrecognized(shown: str) -> IpadmError:
        return _die(f"unrecognized option '{shown}'\nusage: {spec.usage}")

    def needs_value(letter: str) -> IpadmError:
        if not spec.colon:
            return unrecognized(f"-{letter}")
        return _die(f"option '-{letter}' requires a value\nusage: {spec.usage}")

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            letter = long_letter(subcommand, name)
            if letter is None or letter not in takes:
                raise unrecognized(arg if not eq else f"--{name}")
            if takes[letter]:
                if not eq:
                    if i >= len(args):
                        raise needs_value(letter)
                    value = args[i]
                    i += 1
            elif eq:
                raise unrecognized(f"--{name}")
            options.append((letter, value))
            continue
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        pos = 1
        while pos < len(arg):
            letter = arg[pos]
            if letter not in takes:
                raise unrecognized(f"-{letter}")
            if not takes[letter]:
                options.append((letter, ""))
                pos += 1
                continue
            if pos + 1 < len(arg):
                options.append((letter, arg[pos + 1:]))
            elif i < len(args):
                options.append((letter, args[i]))
                i += 1
            else:
                raise needs_value(letter)
            break
    return options, operands


def _one_operand(spec: Spec, operands: Sequence[str]) -> str:
    if len(operands) != 1:
        raise _usage_error(spec)
    return operands[0]


def _optional_operand(spec: Spec, operands: Sequence[str]) -> str:
    if len(operands) > 1:
        raise _usage_error(spec)
    return operands[0] if operands else ""


def _interfaces(options: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    # process_misc_ipmpargs joins every -i with ',' and update_ipmp_common
    # splits with strtok_r: empty names between commas name nothing.
    names: list[str] = []
    for letter, value in options:
        if letter == "i":
            names.extend(name for name in value.split(",") if name)
    return tuple(names)


def _fields(options: Sequence[tuple[str, str]]) -> tuple[str, ...] | None:
    spec = None
    for letter, value in options:
        if letter == "o":
            spec = value  # the last -o wins, as the C variable is overwritten
    return None if spec is None else tuple(spec.split(","))


def _check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise _die(f"invalid protocol '{name}' specified")
    return name


def _ifprop_change(subcommand: str, spec: Spec, options: Sequence[tuple[str, str]],
                   operands: Sequence[str]) -> IpadmCommand:
    """``set-ifprop``/``reset-ifprop`` (``set_ifprop``), checks in its order."""
    reset = subcommand == "reset-ifprop"
    prop: str | None = None
    protocol: str | None = None
    temporary = False
    for letter, value in options:
        if letter == "p":
            if prop is not None:
                raise _die("-p must be specified once only")
            _check_propstr(value, reset, spec)
            prop = value
        elif letter == "m":
            if protocol is not None:
                raise _die("-m must be specified once only")
            protocol = value
        elif letter == "t":
            temporary = True
    if prop is None or protocol is None or len(operands) != 1:
        raise _usage_error(spec)
    name, eq, val = prop.partition("=")
    return IpadmCommand(subcommand, operands[0], temporary=temporary,
                        properties=((name, val if eq else None),),
                        protocol=_check_protocol(protocol))


def _check_propstr(text: str, reset: bool, spec: Spec) -> None:
    """``ipadm_check_propstr``: ``prop=value`` to set, ``prop`` to reset."""
    _name, eq, value = text.partition("=")
    if reset:
        if eq:
            raise _die(f"incorrect syntax used for -p.\n{spec.usage}")
        return
    if not eq or not value:
        raise _die(f"please specify the value to be set.\n{spec.usage}")
    if "=" in value:
        raise _die(f"cannot specify more than one prop=val at a time.\n{spec.usage}")


def _show_ifprop(spec: Spec, options: Sequence[tuple[str, str]], operands: Sequence[str]) -> IpadmCommand:
    names: list[str] = []
    protocol: str | None = None
    parsable = False
    for letter, value in options:
        if letter == "p":
            # ipadm_str2nvlist(IPADM_NORVAL): names only, none empty.
            for name in value.split(","):
                if not name or "=" in name:
                    raise _die("invalid interface properties specified")
                if name not in names:
                    names.append(name)
        elif letter == "m":
            if protocol is not None:
                raise _die("cannot specify more than one -m")
            protocol = value
        elif letter == "c":
            parsable = True
    operand = _optional_operand(spec, operands)
    return IpadmCommand("show-ifprop", operand, properties=tuple((n, None) for n in names),
                        protocol=_check_protocol(protocol or "ip"), fields=_fields(options),
                        parsable=parsable)


def _show(subcommand: str, spec: Spec, options: Sequence[tuple[str, str]],
          operands: Sequence[str]) -> IpadmCommand:
    """``show-if`` and ``show-addr`` (``do_show_if``, ``do_show_addr``)."""
    parsable = any(letter == "p" for letter, _ in options)
    fields = _fields(options)
    if parsable and fields is None:
        raise _die("-p requires -o")
    operand = _optional_operand(spec, operands)
    return IpadmCommand(subcommand, operand, fields=fields, parsable=parsable)


def _address(spec: Spec, text: str) -> tuple[str, str]:
    """``process_common_addrargs`` for a static address: (local, remote).

    ``getsubopt`` over the comma-separated words: ``local=`` and ``remote=``
    once each; one word of neither kind makes the whole argument the local
    address (``-a 192.0.2.10/24``), a second one is an error.
    """
    local: str | None = None
    remote: str | None = None
    mismatch = False
    for word in text.split(","):
        key, eq, value = word.partition("=")
        if eq and key == "local":
            if local is not None:
                raise _die("multiple local addresses provided")
            local = value
        elif eq and key == "remote":
            if remote is not None:
                raise _die("multiple remote addresses provided")
            remote = value
        else:
            if mismatch:
                raise _die(f"invalid address provided\nusage: {spec.usage}")
            mismatch = True
    if remote is not None and local is None:
        raise _die(f"missing local address\nusage: {spec.usage}")
    if local is None:
        if not mismatch:
            raise _die(f"missing local address\nusage: {spec.usage}")
        local = text
    return local, remote or ""


def _create_addr(spec: Spec, options: Sequence[tuple[str, str]], operands: Sequence[str]) -> IpadmCommand:
    """``do_create_addr``, with 11.4's implied ``-T static`` and interface operand."""
    atype: str | None = None
    static_arg: str | None = None
    static_opt = auto_opt = dhcp_opt = False
    temporary = down = False
    addrconf: list[tuple[str, str | None]] = []
    for letter, value in options:
        if letter == "T":
            atype = value
        elif letter == "a":
            static_arg, static_opt = value, True
        elif letter == "d":
            down, static_opt = True, True
        elif letter in "hw":
            dhcp_opt = True
        elif letter == "i":
            auto_opt = True
        elif letter == "p":
            auto_opt = True
            for word in value.split(","):
                key, _, val = word.partition("=")
                addrconf.append((key, val))
        elif letter == "t":
            temporary = True
    if atype is None and static_arg is not None:
        atype = "static"  # Solaris 11.4 ipadm(8): "-T static" is the default
    if atype is None or len(operands) != 1:
        raise _die(f"invalid arguments\nusage: {spec.usage}")
    operand = operands[0]
    ifname, slash, aobj = operand.partition("/")
    if not ifname or (slash and not aobj):
        raise _die(f"invalid address object name: {operand}\nusage: {spec.usage}")
    local = remote = ""
    if atype == "static":
        if static_arg is None or auto_opt or dhcp_opt:
            raise _die(f"invalid arguments for type {atype}\nusage: {spec.usage}")
        local, remote = _address(spec, static_arg)
    elif atype == "dhcp":
        if auto_opt or static_opt:
            raise _die(f"invalid arguments for type {atype}\nusage: {spec.usage}")
    elif atype == "addrconf":
        if dhcp_opt or static_opt:
            raise _die(f"invalid arguments for type {atype}\nusage: {spec.usage}")
    else:
        raise _die(f"invalid address type {atype}")
    return IpadmCommand("create-addr", operand, temporary=temporary, address=local, addr_type=atype,
                        remote=remote, down=down, properties=tuple(addrconf))


#: The ``die`` text each changing subcommand prints when libipadm refuses
#: it (Solaris 11 ``ipadm.c``: ``do_create_ip``, ``add_ipmp``, ...);
#: ``{op}`` the operand, ``{under}`` the first ``-i`` interface.
_REFUSALS: Mapping[str, str] = {
    "create-ip": "cannot create interface {op}",
    "create-ipmp": "cannot create interface {op}",
    "delete-ip": "cannot delete interface {op}",
    "delete-ipmp": "cannot delete IPMP interface {op}",
    "add-ipmp": "cannot add {under} to {op}",
    "remove-ipmp": "cannot remove {under} from {op}",
    "disable-if": "cannot disable interface {op}",
    "enable-if": "cannot enable interface {op}",
    "create-addr": "cannot create address",
    "delete-addr": "cannot delete address",
    "set-ifprop": "set-ifprop: {prop}",
    "reset-ifprop": "reset-ifprop: {prop}",
}


def refusal(command: IpadmCommand, reason: str) -> IpadmError:
    """The error a changing ``command`` dies with for ``reason`` (an
    ``ipadm_status2str`` text such as ``Insufficient privileges``)."""
    under = command.interfaces[0] if command.interfaces else ""
    prop = command.properties[0][0] if command.properties else ""
    head = _REFUSALS.get(command.subcommand, command.subcommand).format(
        op=command.operand, under=under, prop=prop)
    return _die(f"{head}: {reason}")


def parse_argv(argv: Sequence[str]) -> IpadmCommand:
    """The command ``ipadm argv...`` asks for (``argv`` without the program name).

    Raises:
        IpadmError: a usage error, with the text and status ``ipadm.c`` has.
    """
    if not argv:
        return IpadmCommand("")  # Solaris 11.3/11.4: list interfaces and addresses
    subcommand, args = argv[0], argv[1:]
    spec = SUBCOMMANDS.get(subcommand)
    if spec is None:
        raise IpadmError(f"{PROG}: unknown subcommand '{subcommand}'\n{usage_text()}")
    if subcommand == "delete-ip":
        # do_delete_ip takes no option: exactly one word, whatever it is.
        if len(args) != 1:
            raise _usage_error(spec)
        return IpadmCommand(subcommand, args[0])
    options, operands = _scan(subcommand, spec, args)
    letters = {letter for letter, _ in options}
    temporary = "t" in letters
    if subcommand in ("create-ip", "disable-if", "enable-if"):
        operand = _one_operand(spec, operands)
        if subcommand != "create-ip" and not temporary:
            raise _die(f"persistent operation not supported for {subcommand}")
        return IpadmCommand(subcommand, operand, temporary=temporary)
    if subcommand in ("create-ipmp", "add-ipmp", "remove-ipmp"):
        operand = _one_operand(spec, operands)
        interfaces = _interfaces(options)
        if subcommand != "create-ipmp" and "i" not in letters:
            raise _usage_error(spec)
        return IpadmCommand(subcommand, operand, temporary=temporary, interfaces=interfaces)
    if subcommand == "delete-ipmp":
        return IpadmCommand(subcommand, _one_operand(spec, operands), force="f" in letters)
    if subcommand == "delete-addr":
        return IpadmCommand(subcommand, _one_operand(spec, operands), release="r" in letters)
    if subcommand in ("set-ifprop", "reset-ifprop"):
        return _ifprop_change(subcommand, spec, options, operands)
    if subcommand == "show-ifprop":
        return _show_ifprop(spec, options, operands)
    if subcommand == "create-addr":
        return _create_addr(spec, options, operands)
    return _show(subcommand, spec, options, operands)
