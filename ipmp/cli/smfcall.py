"""How ``svccfg``, ``svcadm`` and ``svcprop`` report a failed change of the SMF stand-in."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ipmp.host import smf


def smf_call(prog: str, action: Callable[[], object]) -> bool:
    """Run ``action``; on a refusal or a file error say so as ``prog`` does and return False."""
    try:
        action()
    except smf.SmfError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return False
    except OSError as err:
        print(f"{prog}: {err.filename}: {err.strerror}", file=sys.stderr)
        return False
    return True
