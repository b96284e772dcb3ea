"""THE table that pairs each ifconfig word with its handler, and the one way a word is applied.

``ipmp.config.keywords`` says what a word is (its argument, family, scope);
this table says what it does.  Every supported word of ``KEYWORDS`` has one
handler here, plus ``address``, the bare word that is not a keyword (Solaris:
the two nameless entries at the end of ``ifconfig.c``'s command table).  A
word added to one table and not the other fails ``tests/unit/test_handlers.py``.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from ipmp.config import link_words, unit_words
from ipmp.config.addresses import split_name
from ipmp.config.commands import Action
from ipmp.config.folder import Folder
from ipmp.config.keywords import BY_WORD, Scope
from ipmp.errors import ConfigError

#: What a handler is: it applies one word to the folder's configuration.
Handler = Callable[[Folder, Action], None]

#: The keyword of a bare word (``Action("address", word)``, ``ipmp.config.commands``).
ADDRESS = "address"

HANDLERS: dict[str, Handler] = {
    # One logical interface (ipmp.config.unit_words).
    "plumb": unit_words.do_plumb,
    "unplumb": unit_words.do_unplumb,
    "addif": unit_words.do_addif,
    "removeif": unit_words.do_removeif,
    ADDRESS: unit_words.do_address,
    "set": unit_words.do_set,
    "destination": unit_words.do_destination,
    "up": unit_words.do_up,
    "down": unit_words.do_down,
    "netmask": unit_words.do_netmask,
    "broadcast": unit_words.do_broadcast,
    "deprecated": unit_words.do_deprecated,
    "-deprecated": unit_words.do_deprecated_off,
    "failover": unit_words.do_failover,
    "-failover": unit_words.do_failover_off,
    # The whole interface (ipmp.config.link_words).
    "group": link_words.do_group,
    "standby": link_words.do_standby,
    "-standby": link_words.do_standby_off,
    "failed": link_words.do_failed,
    "-failed": link_words.do_failed_off,
    "mtu": link_words.do_mtu,
    "metric": link_words.do_metric,
    "ether": link_words.do_ether,
    "arp": link_words.do_arp,
    "-arp": link_words.do_arp_off,
    "trailers": link_words.do_trailers,
    "-trailers": link_words.do_trailers_off,
    "router": link_words.do_router,
    "-router": link_words.do_router_off,
    "nud": link_words.do_nud,
    "token": link_words.do_token,
    "subnet": link_words.do_subnet,
}


def apply_word(folder: Folder, action: Action) -> None:
    """One word: the checks its keyword's row asks for, then its handler."""
    cur = folder.cur
    kw = BY_WORD.get(action.keyword)
    if action.keyword == "addif":
        # Solaris addif starts again from the name on the command line, so
        # one line can add several logicals ("addif A up addif B up").
        cur.ifname, cur.unit = split_name(cur.named)
    if kw is not None and kw.family is not None and kw.family != cur.family:
        raise ConfigError(f"Operation {action.keyword} not supported for {cur.family.word}")
    if kw is not None and kw.scope is Scope.PHYSICAL and cur.unit != 0:
        _physical_only(folder.lname(), action.keyword)
    HANDLERS[action.keyword](folder, action)


def _physical_only(name: str, word: str) -> None:
    if word == "addif":
        raise ConfigError(f"addif: bad physical interface name {name}")
    if word == "removeif":
        raise ConfigError(f"removeif: bad physical interface name {name}")
    if word == "group":
        raise ConfigError(f"setifgroupname: SIOCSLIFGROUPNAME: {name}: Invalid argument")
    raise ConfigError(f"{word}: {name}: Invalid argument")
