"""``svccfg``: only ``svccfg -s svc:/network/ipmp setprop config/transitive-probing = [boolean:] true|false``.

The SMF stand-in is ``ipmp.host.smf``; anything else is refused with exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ipmp.cli.smfcall import smf_call
from ipmp.host import smf
from ipmp.host.altroot import root_path

PROG = "svccfg"
_UNSUPPORTED = f"{PROG}: not supported by this toolkit (only: {PROG} -s svc:/network/ipmp setprop " \
               f"{smf.PROPERTY} = [boolean:] true|false)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "-s" or args[2] != "setprop":
        print(_UNSUPPORTED, file=sys.stderr)
        return 1
    if not smf.is_ipmp_fmri(args[1]):
        print(f"{PROG}: {args[1]}: service not supported by this toolkit (only svc:/network/ipmp)",
              file=sys.stderr)
        return 1
    setprop = args[3:]
    return 0 if smf_call(PROG, lambda: smf.set_property(root_path(None), smf.parse_setprop(setprop))) else 1


if __name__ == "__main__":
    sys.exit(main())
