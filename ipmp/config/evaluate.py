"""Solaris ifconfig semantics: fold a parsed command over a ``Config``.

The words of one command are taken left to right as Solaris ``ifconfig``
does (§4.2), with its special cases:

* the IPv4 netmask "hack": the last ``netmask`` of the line is applied with
  any address set on the line, whatever the order (§4.3);
* the first bare word sets the address, the second the destination (§4.1);
* ``addif`` creates the lowest free logical unit and every later word applies
  to it (§4.2); on a FAILED, OFFLINE or INACTIVE member of a group it lands
  on another usable member and remembers its home (§1 item 7);
* ``group`` and ``addif`` only on the physical interface (§4.5, §4.4).

One deliberate difference: Solaris applies each word at once and stops at the
first error, leaving the earlier words applied.  Here an error raises, and the
caller applies nothing: a command is all or nothing.

Each word is applied by ``ipmp.config.handlers.apply_word``: its keyword's
checks, then the handler the table pairs it with (``ipmp.config.unit_words``,
``ipmp.config.link_words``); the values of words are read by
``ipmp.config.addresses``.

Pure module: no I/O; messages are returned, not printed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from ipmp.config.addresses import mask_to_prefix, parse_mask, resolve_address, split_name
from ipmp.config.commands import Action, Command
from ipmp.config.keywords import BY_WORD
from ipmp.config.s11_view import ipmp_logicals, s11_groups
from ipmp.errors import ConfigError, NoSuchInterface, Position
from ipmp.model import (
    LIFNAMSIZ,
    LOCALHOST,
    Config,
    Environment,
    Family,
    Interface,
    IPAddress,
)


@dataclass(frozen=True)
class Outcome:
    """The result of one command: the new configuration and what to say."""

    config: Config
    #: Lines Solaris prints on stdout (``Created new logical interface ...``).
    stdout: tuple[str, ...] = ()
    #: Warnings Solaris prints on stderr without failing (``already exists``).
    stderr: tuple[str, ...] = ()
    #: Logical names whose status to print (no words, or ``ether`` alone).
    status: tuple[str, ...] = ()
    #: (interface, family) pairs the command changed or may change.
    touched: frozenset[tuple[str, Family]] = frozenset()
    #: A ``group`` was set: Solaris ifconfig then starts in.mpathd.
    start_mpathd: bool = False


def _line_netmask(actions: tuple[Action, ...]) -> Action | None:
    """§4.3: the last ``netmask`` of the line is applied with the address."""
    found = None
    for action in actions:
        if action.keyword == "netmask":
            found = action
    return found


def _resolve_line_netmask(
    action: Action | None, actions: tuple[Action, ...], family: Family, env: Environment
) -> IPv4Address | None:
    if action is None or family is not Family.INET or action.argument is None:
        return None
    if action.argument != "+":
        mask = parse_mask(action.argument, env)
        mask_to_prefix(mask, action.argument)  # refuse it here, at the netmask word
        return mask
    # ``netmask +`` with the address the line sets: look it up now.
    for a in actions:
        if a.keyword in ("address", "set", "addif") and a.argument is not None:
            try:
                addr, prefix = resolve_address(a.argument, family, env)
            except ConfigError:
                return None
            if prefix is None and isinstance(addr, IPv4Address):
                return env.netmask_for(addr)
            return None
    return None



def _at(position: Position | None, error: ConfigError) -> ConfigError:
    if error.position is None and position is not None:
        error.position = position
    return error


def _localhost_held(config: Config) -> frozenset[tuple[str, IPAddress]]:
    """The loopback's UP 127.0.0.1 and ``::1``, as (interface, address).

    No command may take these away (``evaluate``).  Solaris let root do it
    (``ifconfig lo0 down``, or a new address on lo0); on Linux every local
    service, and much of the system, talks to localhost, and nothing would
    tell the administrator why they all broke.
    """
    return frozenset(
        (itf.name, lg.address.ip)
        for itf in config.interfaces if itf.loopback
        for lg in itf.logicals
        if lg.up and lg.address is not None and lg.address.ip in LOCALHOST
    )


def evaluate(config: Config, command: Command, env: Environment) -> Outcome:
    """Fold ``command`` over ``config``; raise ``ConfigError`` (with a position) on error."""
    family = command.family or Family.INET
    if command.ifname is None:
        return _evaluate_all(config, command, env)
    if len(command.ifname) >= LIFNAMSIZ:
        raise ConfigError(f"{command.ifname}: interface name too long", command.position)
    try:
        base, unit = split_name(command.ifname)
    except ConfigError as err:
        raise _at(command.position, err) from None
    itf = config.get(base)
    if itf is None:
        word = "plumb" if any(a.keyword == "plumb" for a in command.actions) else "status: SIOCGLIFFLAGS"
        raise NoSuchInterface(f"{word}: {command.ifname}: no such interface", command.position)
    if itf.ipmp and any(a.keyword != "ether" or a.argument is not None for a in command.actions):
        # An IPMP interface ``ipadm create-ipmp`` made is ipadm's to change
        # (Oracle ipadm(8)): a word here would bypass its address objects
        # and persistent configuration, so none is applied.
        raise ConfigError(f"{command.ifname}: is an IPMP interface managed by ipadm; use ipadm",
                          command.position)
    named = [lg for f in (Family.INET, Family.INET6) if (lg := itf.logical(f, unit)) is not None]
    bound_here = bool(unit) and any(lg.ipmp_unit is not None for lg in named)
    owner = config.ipmp_interface(itf.group) if bound_here else None
    if owner is not None:
        # The member's unit holds a data address of the IPMP interface: in
        # Solaris 11 that address is the IPMP interface's, and the member
        # has no such unit (s11_view.member_logicals).
        if not command.actions:
            raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                  command.position)
        raise ConfigError(f"{command.ifname}: holds a data address of {owner.name}, "
                          f"an IPMP interface managed by ipadm; use ipadm", command.position)
    plumbing = any(a.keyword == "plumb" for a in command.actions)
    if not command.actions:
        if family not in itf.plumbed and command.family is not None:
            raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                  command.position)
        if itf.ipmp and unit:
            # Its units are its data addresses, wherever bound (s11_view).
            fams = [family] if command.family is not None else [Family.INET, Family.INET6]
            if not any(lg.unit == unit for f in fams for lg in ipmp_logicals(config, itf, f)):
                raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                      command.position)
        elif unit and itf.logical(family, unit) is None and not (command.family is None
                                                                  and itf.logical(Family.INET6, unit)):
            raise NoSuchInterface(f"status: SIOCGLIFFLAGS: {command.ifname}: no such interface",
                                  command.position)
        return Outcome(config=config, status=(command.ifname,))
    if not plumbing and family not in itf.plumbed:
        raise NoSuchInterface(f"{command.ifname}: no such interface", command.position)
    # Here, not at the top: a status read (no words) applies none, and
    # ``ifconfig -a`` need not load the handlers (tests/unit/test_startup.py).
    from ipmp.config.folder import Cursor, Folder
    from ipmp.config.handlers import apply_word

    cursor = Cursor(ifname=base, family=family, unit=unit, named=command.ifname)
    netmask_action = _line_netmask(command.actions)
    try:
        netmask = _resolve_line_netmask(netmask_action, command.actions, family, env)
    except ConfigError as err:
        raise _at(netmask_action.position if netmask_action else command.position, err) from None
    folder = Folder(config, env, cursor, netmask)
    localhost = _localhost_held(config) if itf.loopback else frozenset()
    lost_at: dict[tuple[str, IPAddress], Action] = {}
    for action in command.actions:
        try:
            apply_word(folder, action)
        except ConfigError as err:
            raise _at(action.argument_position or action.position, err) from None
        if localhost:
            held = _localhost_held(folder.config)
            lost_at = {k: lost_at.get(k, action) for k in localhost - held}
    for (name, addr), action in lost_at.items():
        # A word may take it away if a later one puts it back (``lo0 down up``).
        said = action.argument if action.keyword in ("address", "set") else None
        raise ConfigError(f"{said or action.keyword}: {name}: refused: it would take {addr} (localhost) "
                          f"off the loopback, and Linux cannot do without it",
                          action.argument_position or action.position)
    return Outcome(
        config=folder.config,
        stdout=tuple(cursor.stdout),
        stderr=tuple(cursor.stderr),
        status=tuple(cursor.status),
        touched=frozenset(cursor.touched),
        start_mpathd=cursor.start_mpathd,
    )


def selected_logicals(config: Config, letters: str, family: Family | None) -> list[tuple[str, Family]]:
    """The logical names ``-a<letters>`` selects, in ``ifconfig -a`` order."""
    out: list[tuple[str, Family]] = []
    families = [family] if family is not None else [Family.INET, Family.INET6]
    if "4" in letters and "6" not in letters:
        families = [f for f in families if f is Family.INET]
    if "6" in letters and "4" not in letters:
        families = [f for f in families if f is Family.INET6]
    s11 = s11_groups(config)
    for fam in families:
        for itf in config.nics:  # ``ifconfig -a`` words leave the ipadm-made IPMP interfaces alone
            if fam not in itf.plumbed:
                continue
            for lg in itf.logicals_of(fam):
                if lg.ipmp_unit is not None and itf.group in s11:
                    continue  # the IPMP interface's data address its member holds
                if "u" in letters and not lg.up:
                    continue
                if "d" in letters and lg.up:
                    continue
                out.append((lg.name(itf.name), fam))
    return out


def _evaluate_all(config: Config, command: Command, env: Environment) -> Outcome:
    """``ifconfig -a... words``: the words apply to every selected logical interface."""
    letters = command.all_letters or "a"
    stdout: list[str] = []
    stderr: list[str] = []
    touched: set[tuple[str, Family]] = set()
    start = False
    if any(a.keyword == "plumb" for a in command.actions):
        # Solaris plumbs every device, for inet when no family is given.
        family = command.family or Family.INET
        targets = [(itf.name, family) for itf in config.nics if not itf.loopback]
    else:
        targets = selected_logicals(config, letters, command.family)
    for name, fam in targets:
        actions = command.actions
        if command.family is None:
            # Solaris calls a family-bound word only on logicals of its own
            # family (ifconfig()): ``-a netmask +`` passes IPv6 ones over.
            actions = tuple(
                a for a in actions if (kw := BY_WORD.get(a.keyword)) is None or kw.family in (None, fam)
            )
            if not actions:
                continue
        sub = Command(ifname=name, family=fam, actions=actions, position=command.position)
        out = evaluate(config, sub, env)
        config = out.config
        stdout += out.stdout
        stderr += out.stderr
        touched |= out.touched
        start = start or out.start_mpathd
    return Outcome(config=config, stdout=tuple(stdout), stderr=tuple(stderr), touched=frozenset(touched),
                   start_mpathd=start)


def reset_interface(itf: Interface) -> Interface:
    """The interface as boot finds it: kernel facts only, nothing configured (for ipmp-boot).

    Addresses whose home is another NIC (failed over to this one by
    in.mpathd, or rescued here at boot, §6.5) stay: they are not this NIC's
    to configure, and dropping them would take them off the network.
    """
    return replace(
        itf,
        plumbed=frozenset(),
        link_up=False,
        metric=0,
        group="",
        standby=False,
        failed=False,
        offline=False,
        held_inactive=False,
        logicals=tuple(lg for lg in itf.logicals if lg.home not in ("", itf.name)),
    )

