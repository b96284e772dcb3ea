"""Watch the kernel change: rtnetlink multicast events and the carrier bit of NICs, for in.mpathd.

Both are read straight off the kernel, without pyroute2 or a thread: the
daemon's event loop adds the ``Watcher``'s socket as a reader, and polls
carrier through the ``CarrierReader``'s kept descriptors.  The messages are
taken apart by ``ipmp.kernel.decode``, the same decoder as the dump's.

May import: ``ipmp.kernel.decode``.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Final

from ipmp.kernel.decode import LinkEvent, events

__all__ = ["WATCH_GROUPS", "CarrierReader", "LinkEvent", "Watcher"]

# rtnetlink multicast groups (<linux/rtnetlink.h>, RTMGRP_* bits / RTNLGRP_*).
_RTMGRP_LINK: Final = 0x1
_RTMGRP_IPV4_IFADDR: Final = 0x10
_RTMGRP_IPV4_ROUTE: Final = 0x40
_RTMGRP_IPV4_RULE: Final = 0x80
_RTMGRP_IPV6_IFADDR: Final = 0x100
_RTMGRP_IPV6_ROUTE: Final = 0x400
_RTNLGRP_IPV6_RULE: Final = 19
#: RTM_NEWNETCONF: a NIC's forwarding (ROUTER, ``ifconfig router``) changed,
#: whoever wrote the sysctl; the daemon must not plan over it from an old read.
_RTNLGRP_IPV4_NETCONF: Final = 24
_RTNLGRP_IPV6_NETCONF: Final = 25
WATCH_GROUPS: Final = (_RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV4_ROUTE | _RTMGRP_IPV4_RULE
                       | _RTMGRP_IPV6_IFADDR | _RTMGRP_IPV6_ROUTE | (1 << (_RTNLGRP_IPV6_RULE - 1))
                       | (1 << (_RTNLGRP_IPV4_NETCONF - 1)) | (1 << (_RTNLGRP_IPV6_NETCONF - 1)))


class Watcher:
    """Kernel change notifications, read straight off a non-blocking netlink socket.

    A raw socket and ``loop.add_reader`` take about 0.36 ms from a carrier
    change to the daemon, against 0.76 ms through pyroute2 (linux-mapping.md
    Q2), and the daemon only needs the link flags and "something changed".
    ``read()`` returns link events and a flag saying that addresses, routes,
    rules or a NIC's forwarding changed, or that the socket overran (then
    everything must be read again).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                  socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, WATCH_GROUPS))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def read(self) -> tuple[list[LinkEvent], bool]:
        links: list[LinkEvent] = []
        changed = False
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return links, changed
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    changed = True  # overrun: the caller rereads everything
                    continue
                raise
            found, other = events(data)
            links += found
            changed = changed or other


class CarrierReader:
    """The carrier bit of NICs polled again and again, read directly: each file opened once, then re-read.

    The kernel's linkwatch batches carrier events of physical NICs up to 1 s
    (linux-mapping.md Q2); ``/sys/class/net/IF/carrier`` reads the driver's
    state at once, so the daemon polls it cheaply between events.

    sysfs makes an attribute again at every read from offset 0, so one
    pread(2) on a kept descriptor is a fresh read, where an open, a read and
    a close cost twenty times the instructions, for a poll every 50 ms per
    NIC.  A descriptor whose NIC is gone fails with ENODEV: it is dropped
    and the name opened again.  ``forget()`` drops every descriptor (names
    may have moved to other NICs).
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def __call__(self, ifname: str) -> bool | None:
        """The carrier bit: None when the NIC is gone; False when it is admin down (the read fails EINVAL)."""
        for _ in range(2):
            fd = self._fds.get(ifname)
            if fd is None:
                try:
                    fd = os.open(f"/sys/class/net/{ifname}/carrier", os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    return None
                except OSError:
                    return False
                self._fds[ifname] = fd
            try:
                return os.pread(fd, 1, 0) == b"1"
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    return False  # EINVAL: admin down
                self._drop(ifname)  # that NIC is gone: the name, again
        return None

    def _drop(self, ifname: str) -> None:
        fd = self._fds.pop(ifname, None)
        if fd is not None:
            os.close(fd)

    def forget(self) -> None:
        for ifname in list(self._fds):
            self._drop(ifname)

    close = forget
