"""``svcprop``: only ``svcprop -p config/transitive-probing svc:/network/ipmp`` (prints true or false).

The value shown is the running one (after ``svcadm refresh``), as SMF's
``svcprop`` shows; ``ipmp.host.smf`` holds it.  Anything else: exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ipmp.host import smf
from ipmp.host.altroot import root_path

PROG = "svcprop"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "-p" or args[1] != smf.PROPERTY or not smf.is_ipmp_fmri(args[2]):
        print(f"{PROG}: not supported by this toolkit (only: {PROG} -p {smf.PROPERTY} svc:/network/ipmp)",
              file=sys.stderr)
        return 1
    try:
        value = smf.read_property(root_path(None))
    except (OSError, UnicodeDecodeError, smf.SmfError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    print("true" if value else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
