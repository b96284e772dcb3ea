"""What a network namespace holds, read with iproute2 only (never the product's netlink code).

:func:`snapshot` turns ``ip -j`` output into sorted lists of canonical
strings: links (admin state, MTU, MAC, NOARP), every address, every route of
every table, every rule, and the given sysctls.  Fields that change on
their own (lifetimes counting down, statistics, operstate, the order the
kernel lists things in) are left out, so two snapshots are equal exactly
when the namespace holds the same configuration.

Used from the test process (``ip -n NS``) and from scripts running inside a
namespace (plain ``ip``): the caller passes how to run ``ip -j ARGS``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import Any

IpJson = Callable[..., Any]

_ROUTE_FIELDS = ("type", "dst", "gateway", "dev", "protocol", "scope", "prefsrc", "metric", "table", "flags")
_ADDR_FIELDS = ("family", "local", "prefixlen", "broadcast", "scope", "label", "noprefixroute", "nodad")


def local_ip_json(*args: str) -> Any:
    """``ip -j ARGS`` in the namespace of the calling process."""
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout.strip()
    return json.loads(out) if out else []


def _canon(doc: dict[str, Any], fields: Iterable[str]) -> str:
    return json.dumps({k: doc[k] for k in fields if k in doc}, sort_keys=True)


def snapshot(ip_json: IpJson, *, sysctls: dict[str, str | None] | None = None) -> dict[str, list[str]]:
    """The namespace's configuration as comparable sorted string lists."""
    links = []
    addresses = []
    for link in ip_json("addr", "show"):
        flags = set(link.get("flags", ()))
        links.append(json.dumps([link["ifname"], "UP" in flags, "NOARP" in flags, link.get("mtu"),
                                 link.get("address")]))
        for info in link.get("addr_info", ()):
            doc = {"ifname": link["ifname"], **info}
            # Deprecated (preferred_lft 0) is configuration; the rest of the
            # lifetimes are clocks.
            doc["deprecated"] = info.get("preferred_life_time") == 0
            addresses.append(_canon(doc, ("ifname", *_ADDR_FIELDS, "deprecated")))
    routes = [_canon(r, _ROUTE_FIELDS)
              for fam in ("-4", "-6") for r in ip_json(fam, "route", "show", "table", "all")]
    rules = [json.dumps(r, sort_keys=True) for fam in ("-4", "-6") for r in ip_json(fam, "rule", "show")]
    snap = {"links": sorted(links), "addresses": sorted(addresses), "routes": sorted(routes),
            "rules": sorted(rules)}
    if sysctls is not None:
        snap["sysctls"] = sorted(f"{k}={v}" for k, v in sysctls.items())
    return snap


def read_sysctls(keys: Sequence[str]) -> dict[str, str | None]:
    """``/proc/sys/KEY`` for each key, in the calling process's namespace (None if absent)."""
    out: dict[str, str | None] = {}
    for key in keys:
        try:
            with open(f"/proc/sys/{key}") as f:
                out[key] = f.read().strip()
        except OSError:
            out[key] = None
    return out


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Human-readable ``-``/``+`` lines of what changed (empty when equal)."""
    lines = []
    for part in sorted(set(before) | set(after)):
        b, a = set(before.get(part, ())), set(after.get(part, ()))
        lines += [f"- {part}: {x}" for x in sorted(b - a)] + [f"+ {part}: {x}" for x in sorted(a - b)]
    return lines
