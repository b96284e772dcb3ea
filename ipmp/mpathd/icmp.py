"""ICMP / ICMPv6 echo probes: the packet codec (pure) and the per-NIC probe socket.

The probe format and the reply checks are in.mpathd's (reference
solaris-ipmp.md section 2.4; illumos ``mpd_probe.c`` ``probe()``,
``in_data()``, ``in6_data()``): an echo request carrying a send timestamp
and a probe type, one ICMP id per probe socket, and replies vetted in the
same order and with the same trace texts as Solaris.

Payload of every probe (and so of every reply, which echoes it)::

    0   type, code, checksum        ICMP header (struct pr_icmp of illumos)
    4   id, sequence number
    8   timestamp (ms, 32 bits)     pr_icmp_timestamp
    12  probe type                  pr_icmp_mtype: PROBE_UNICAST/MULTICAST/RTT
    16  token (8 bytes)             ours: not in Solaris

Decision (issue 20, deviating from illumos on purpose): Solaris uses the
guessable id ``((pid & 0xff) << 8) | (ifindex & 0xff)`` and starts the
sequence numbers at 1, and it believes any echo reply that carries that id
and a sequence number in its window.  An attacker on the link who guesses
them (the pid has 8 bits that matter, ifindex is small, the sequence number
grows by one per probe interval and ``ipmpstat -p`` shows it to every local
user) can forge echo replies from the probe target for a NIC that is dead
and hide its failure: the data addresses stay on a NIC that passes nothing.
Here each probe socket has a random id (unique among the daemon's sockets),
each probing instance a random first sequence number (``probe.first_seq``),
and each probe carries a token: a keyed hash (BLAKE2b, a random 16-byte key
per socket) of id, sequence number, timestamp and probe type.  A reply
must bring back the token of the probe it answers; one that does not is
not a reply to our probe and is dropped without a word, as replies with
another id are.  The token is per probe, not one constant per socket,
because multicast discovery probes reach every host on the link: a host
that saw one of them learns nothing it could forge another reply with.
The random first sequence number only keeps hosts off the machine from
guessing (local users read the numbers from the probes stream); the id and
the token, which nothing publishes, are what a forger cannot get.
Targets echo the whole payload (RFC 792, RFC 4443 section 4.2), so nothing
changes for them; the first 16 bytes keep the Solaris layout.

Socket options follow ``phyint_inst_v4_sockinit`` / ``phyint_inst_v6_sockinit``
with the Linux substitutions of linux-mapping.md Q4: the Solaris
``IP_DONTFAILOVER_IF`` pin becomes ``SO_BINDTODEVICE``, so a probe from a NIC's
test address leaves through that NIC even when the routing table would pick
another one, and only replies that arrived on that NIC are seen.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import secrets
import socket
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import NamedTuple

from ipmp.model import Family, IPAddress

__all__ = [
    "ALL_NODES_V4",
    "ALL_NODES_V6",
    "ICMP6_ECHO_REPLY",
    "ICMP6_ECHO_REQUEST",
    "ICMP_ECHO_REPLY",
    "ICMP_ECHO_REQUEST",
    "PROBE_LEN",
    "PROBE_MULTICAST",
    "PROBE_RTT",
    "PROBE_UNICAST",
    "PR_ICMP_LEN",
    "SECRET_LEN",
    "TOKEN_LEN",
    "BadReply",
    "EchoReply",
    "ProbeKey",
    "ProbeSocket",
    "decode_echo_reply",
    "encode_echo",
    "icmp_checksum",
    "icmp_filter_block_all_but",
    "new_probe_key",
]

#: Probe types carried in the last word of every probe (illumos ``PROBE_UNI``,
#: ``PROBE_MULTI``, ``PROBE_RTT``): failure detection, target discovery, RTT only.
PROBE_UNICAST = 0x1234
PROBE_MULTICAST = 0x5678
PROBE_RTT = 0x9ABC

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129

#: Multicast target discovery goes to the all-nodes groups (illumos
#: ``all_nodes_mcast_v4`` / ``all_nodes_mcast_v6``).
ALL_NODES_V4 = IPv4Address("224.0.0.1")
ALL_NODES_V6 = IPv6Address("ff02::1")

# struct pr_icmp: type, code, checksum, id, seq, timestamp (ms), probe type.
_PR_ICMP = struct.Struct("!BBHHHII")
#: ``sizeof (struct pr_icmp)``: a reply shorter than this is "too short" (Solaris).
PR_ICMP_LEN = _PR_ICMP.size
#: Bytes of the token that follows the Solaris payload.  64 bits: a blind
#: forger has to send ~2^63 replies per success, on top of guessing the id.
TOKEN_LEN = 8
#: Bytes of the random key per probe socket the token is made with.
SECRET_LEN = 16
#: Size of a probe: the Solaris payload and the token.  A reply needs all of
#: it to be one of ours.
PROBE_LEN = PR_ICMP_LEN + TOKEN_LEN
# What the token covers: id, seq, timestamp, probe type (every field we choose).
_SIGNED = struct.Struct("!HHII")
# The ICMP header's first five fields, and the timestamp and probe type after them.
_ECHO_HEAD = struct.Struct("!BBHHH")
_ECHO_TAIL = struct.Struct("!II")
#: Tokens a key remembers (``ProbeKey.token``): the probes of the last few
#: intervals, so that the reply to a probe is checked against the token its
#: probe was sent with instead of a second keyed hash.
_TOKEN_MEMORY = 64
_INET = Family.INET
# Solaris drops (debug trace only) anything shorter than an ICMP header.
_ICMP_MINLEN = 8
_IPV4_MIN_HEADER = 20

# The Solaris trace texts (section 2.12), each completed with the NIC name.
# IPv6 prints "code:" with a colon, IPv4 without: both as in mpd_probe.c.
_REPLY_CODE_V4 = "probe reply code %d from %s on %s"
_REPLY_CODE_V6 = "probe reply code: %d from %s on %s"
_REPLY_TOO_SHORT = "probe reply too short: %d bytes from %s on %s"
_REPLY_TYPE = "probe reply type: %d from %s on %s"
_NOT_LINKLOCAL = "ICMPv6 echo reply source address not linklocal from %s on %s"

_KNOWN_PROBE_TYPES = frozenset((PROBE_UNICAST, PROBE_MULTICAST, PROBE_RTT))


@dataclass(frozen=True)
class ProbeKey:
    """What one probe socket signs its probes with: its ICMP id and a secret key.

    Made by ``new_probe_key`` (random); never logged or published (the
    repr leaves the secret out), so nobody outside the daemon can make a
    token.
    """

    ident: int
    secret: bytes = field(repr=False)
    #: The tokens made last, by (seq, timestamp, probe type): a token is a
    #: function of these, so a reply's is the one its probe was sent with.
    _recent: dict[tuple[int, int, int], bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.ident <= 0xFFFF:
            raise ValueError(f"ICMP id out of range: {self.ident}")
        if len(self.secret) < SECRET_LEN:
            raise ValueError(f"probe key secret shorter than {SECRET_LEN} bytes")
        object.__setattr__(self, "_recent", {})

    def token(self, seq: int, timestamp_ms: int, probe_type: int) -> bytes:
        """The token of the probe with these fields (a keyed BLAKE2b of them, TOKEN_LEN bytes)."""
        fields = (seq & 0xFFFF, timestamp_ms & 0xFFFFFFFF, probe_type)
        recent = self._recent
        token = recent.get(fields)
        if token is None:
            if len(recent) >= _TOKEN_MEMORY:
                recent.clear()  # bounded: anyone may send replies with our id's fields
            signed = _SIGNED.pack(self.ident, *fields)
            token = recent[fields] = hashlib.blake2b(signed, digest_size=TOKEN_LEN, key=self.secret).digest()
        return token


def icmp_checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum (one's complement of the one's complement sum).

    The one's complement sum of the 16-bit words is the data read as one
    big-endian number modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), except that a
    sum of non-zero words that is 0 modulo 0xFFFF is 0xFFFF: one big-integer
    remainder instead of a sum word by word (every probe is checksummed).
    """
    if len(data) % 2:
        data += b"\0"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if not total and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def encode_echo(family: Family, key: ProbeKey, seq: int, timestamp_ms: int, probe_type: int) -> bytes:
    """An echo request as in.mpathd sends it, with the token of ``key`` (PROBE_LEN bytes).

    ``seq`` and ``timestamp_ms`` are counters and wrap (16 and 32 bits, like
    ``pii_snxt`` and ``getcurrenttime()``); ``probe_type`` must fit its
    field.  The IPv4 checksum is computed here (``in_cksum`` in
    ``probe()``); the ICMPv6 one is left 0 because the kernel always fills it
    in on raw ICMPv6 sockets (RFC 3542 section 3.1; it needs the IPv6 pseudo
    header, which only the kernel knows for sure).
    """
    if not 0 <= probe_type <= 0xFFFFFFFF:
        raise ValueError(f"probe type out of range: {probe_type}")
    seq &= 0xFFFF
    timestamp_ms &= 0xFFFFFFFF
    token = key.token(seq, timestamp_ms, probe_type)
    ident = key.ident
    if family is not _INET:
        return _PR_ICMP.pack(ICMP6_ECHO_REQUEST, 0, 0, ident, seq, timestamp_ms, probe_type) + token
    packet = _PR_ICMP.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq, timestamp_ms, probe_type) + token
    return _PR_ICMP.pack(ICMP_ECHO_REQUEST, 0, icmp_checksum(packet), ident, seq, timestamp_ms,
                         probe_type) + token


class EchoReply(NamedTuple):
    """A well-formed reply to one of our probes (the caller still checks seq/target).

    A named tuple rather than a frozen dataclass: one is made per reply.
    """

    ident: int
    seq: int
    timestamp_ms: int
    probe_type: int
    source: IPAddress


@dataclass(frozen=True)
class BadReply:
    """A reply Solaris rejects with a trace message (logged at LOG_INFO).

    ``reason_format`` is the Solaris format string; its last ``%s`` is the NIC
    name, which the decoder does not know, so ``args`` holds every argument
    but that one.  Use :meth:`message` to get the finished text.
    """

    reason_format: str
    args: tuple[int | str, ...]

    def message(self, ifname: str) -> str:
        return self.reason_format % (*self.args, ifname)


def decode_echo_reply(
    family: Family,
    packet: bytes,
    source: IPAddress,
    *,
    key: ProbeKey | None = None,
    require_linklocal: bool = True,
) -> EchoReply | BadReply | None:
    """Vet one packet read from a probe socket, in in.mpathd's order.

    ``packet`` is what the raw socket delivered: for IPv4 with the IP header
    (stripped here by its IHL), for IPv6 without.  ``source`` is the sender.

    Returns None for what Solaris drops without a word (at most a debug
    trace): anything shorter than an ICMP header, anything but an echo reply,
    and -- when ``key`` is given -- replies carrying another id, i.e. to
    somebody else's echo request.  Solaris checks the id *before* the code
    and the length, so pass ``key`` to get exactly its messages.

    With ``key``, a reply that passes every Solaris check must also bring
    back the token of the probe it names (id, sequence number, timestamp,
    type): one that does not is not a reply to our probe but a forgery or
    some other echo, and returns None like a reply with another id.  The
    token is checked last so that the Solaris messages stay as they are: a
    forger must still guess the random id to make the daemon log one.

    IPv6 replies must come from a link-local address, because Solaris only
    probes from link-local test addresses and targets link-local routers;
    ``require_linklocal=False`` skips that check (e.g. for lab probes to a
    global address).  The IPv6 routing header check of Solaris needs
    ancillary data and is not done here.
    """
    # The ICMP message is read where it starts in ``packet`` (no copy): every reply comes here.
    size = len(packet)
    if family is _INET:
        if size < _IPV4_MIN_HEADER or packet[0] >> 4 != 4:
            return None
        start = (packet[0] & 0x0F) * 4
        if start < _IPV4_MIN_HEADER or size < start + _ICMP_MINLEN:
            return None
        size -= start
        echo_reply = ICMP_ECHO_REPLY
        code_format = _REPLY_CODE_V4
    else:
        if size < _ICMP_MINLEN:
            return None
        start = 0
        echo_reply = ICMP6_ECHO_REPLY
        code_format = _REPLY_CODE_V6

    icmp_type, code, _checksum, reply_ident, seq = _ECHO_HEAD.unpack_from(packet, start)
    if icmp_type != echo_reply:
        return None
    if key is not None and reply_ident != key.ident:
        return None
    # The sender is written out only for a complaint: every probe reply comes here.
    if family is not _INET and require_linklocal and not source.is_link_local:
        return BadReply(_NOT_LINKLOCAL, (_printable(source),))
    if code != 0:
        return BadReply(code_format, (code, _printable(source)))
    if size < PR_ICMP_LEN:
        return BadReply(_REPLY_TOO_SHORT, (size, _printable(source)))
    timestamp_ms, probe_type = _ECHO_TAIL.unpack_from(packet, start + 8)
    if probe_type not in _KNOWN_PROBE_TYPES:
        # Solaris prints the word with %d, i.e. as a signed 32-bit int.
        signed = probe_type - (1 << 32) if probe_type & 0x80000000 else probe_type
        return BadReply(_REPLY_TYPE, (signed, _printable(source)))
    if key is not None and (
        size < PROBE_LEN
        or not hmac.compare_digest(packet[start + PR_ICMP_LEN:start + PROBE_LEN],
                                   key.token(seq, timestamp_ms, probe_type))
    ):
        return None  # no token, or not the one of the probe it names: not a reply to us
    return EchoReply(reply_ident, seq, timestamp_ms, probe_type, source)


def _printable(address: IPAddress) -> str:
    # inet_ntop() in Solaris: no "%scope" suffix.
    return str(address).split("%", 1)[0]


# ------------------------------------------------------------------ sockets
# Linux values the socket module of Python 3.11 does not export.
_SOL_RAW = 255
_ICMP_FILTER = 1  # SOL_RAW: u32 bitmap of ICMP types 0..31 to block (linux/icmp.h)
_ICMP6_FILTER = 1  # IPPROTO_ICMPV6: 256-bit bitmap of types to block (linux/icmpv6.h)

# The biggest IPv4 header is 60 bytes; replies are 16 bytes of ICMP, but an
# echo reply may carry whatever the target chose to echo: read generously so
# the kernel never truncates one silently.
_RECV_SIZE = 4096
#: Targets (and reply senders) whose socket address / parsed form a probe
#: socket remembers; past this many the memory starts over.
_ADDRESS_CACHE = 64
#: SO_TIMESTAMPNS (asm-generic/socket.h; the Python socket module lacks the
#: name): each packet comes with its kernel arrival time, a struct timespec
#: of CLOCK_REALTIME, as a control message of the same type.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("=qq")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
#: SIOCINQ (linux/sockios.h, the same number as FIONREAD): the size of the
#: next datagram waiting on a raw socket, 0 when none.  Asking costs a
#: fraction of the recvmsg(2) that fails with EAGAIN and raises.
_SIOCINQ = 0x541B


def icmp_filter_block_all_but(*passed: int) -> bytes:
    """A Linux ``ICMP6_FILTER`` value that blocks every ICMPv6 type but ``passed``.

    ``struct icmp6_filter`` is eight 32-bit words in host byte order.  On Linux
    a set bit means *block*; BSD stacks use the opposite sense, which the
    RFC 3542 macros hide and Python does not provide.
    """
    words = [0xFFFFFFFF] * 8
    for icmp_type in passed:
        words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def new_probe_key(in_use: Collection[int] = ()) -> ProbeKey:
    """A random id, none of ``in_use`` (the daemon's other probe sockets), and a random secret.

    From the operating system's CSPRNG (``secrets``): see the module
    docstring for the attack a guessable id and token let through.
    """
    if len(in_use) > 0xFFFF:
        raise ValueError("every ICMP id is in use")
    while True:
        ident = secrets.randbelow(0x10000)
        if ident not in in_use:
            return ProbeKey(ident, secrets.token_bytes(SECRET_LEN))


class ProbeSocket:
    """One NIC's probe socket: raw ICMP (IPv4) or ICMPv6, bound to its test address.

    Options, each for the reason Solaris sets it (``phyint_inst_*_sockinit``):

    * bound to the test address, so probes carry it as source and only
      replies to it are read; ``SO_BINDTODEVICE`` pins the socket to the NIC
      (Solaris ``IP_DONTFAILOVER_IF``): probes leave through this NIC even if
      its routes are gone or point elsewhere, and replies that arrive on
      another NIC are not this NIC's;
    * TTL / hop limit 1 for unicast and multicast: targets are on-link, and
      an off-link answer must not count;
    * multicast loop off: the host must not discover itself as a target;
    * the multicast interface is the NIC (discovery to 224.0.0.1 / ff02::1);
    * a type filter passing only echo replies (ICMPv6 ``ICMP6_FILTER`` as in
      Solaris; for IPv4 the Linux ``ICMP_FILTER`` does the same job), so the
      daemon is not woken by every other ICMP message for the address;
    * non-blocking: the daemon drains it from its event loop.
    """

    def __init__(self, ifname: str, address: IPAddress, *, ifindex: int | None = None) -> None:
        self.ifname = ifname
        self.address = address
        self.family = Family(address.version)
        self.ifindex = socket.if_nametoindex(ifname) if ifindex is None else ifindex
        # Per-probe work kept off the hot path: a NIC probes a handful of
        # targets, and the machine hands the same address object for each
        # every time.  Found by identity (an address hashes in Python code);
        # an entry holds its address, so that id is not reused meanwhile.
        self._sockaddrs: dict[int, tuple[IPAddress, tuple[str, int] | tuple[str, int, int, int]]] = {}
        self._senders: dict[str, IPAddress] = {}
        # SIOCINQ's answer (``receive``); None once the kernel refused the ioctl.
        self._inq: bytearray | None = bytearray(4)
        if self.family is Family.INET:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            self._setup(sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def _setup(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        # A reply's round trip is measured from when the kernel got it, not
        # from when a busy event loop came round to read it: a late read
        # must not raise a target's CRTT and with it the failure detection time.
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
        if self.family is Family.INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            # struct ip_mreqn {multiaddr, address, ifindex}: by index, so the
            # NIC is named even if the test address were on several NICs.
            mreqn = struct.pack("=4s4si", b"\0" * 4, self.address.packed, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF))
            sock.bind((str(self.address), 0))
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, icmp_filter_block_all_but(ICMP6_ECHO_REPLY))
            sock.bind(self._sockaddr(self.address))

    def _sockaddr(self, address: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        if address.version == 4:
            return (str(address), 0)
        assert isinstance(address, IPv6Address)
        # Link-local and link-scope multicast addresses only mean something
        # together with the link: give the NIC's index as scope id.
        scoped = address.is_link_local or (address.is_multicast and (address.packed[1] & 0x0F) <= 2)
        return (_printable(address), 0, 0, self.ifindex if scoped else 0)

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def send(self, target: IPAddress, data: bytes) -> None:
        """Send one probe; OSError if the kernel refused or sent only part of it."""
        known = self._sockaddrs.get(id(target))
        if known is None or known[0] is not target:
            if target.version != self.address.version:
                raise ValueError(f"IPv{target.version} target for an IPv{self.address.version} probe socket")
            if len(self._sockaddrs) >= _ADDRESS_CACHE:
                self._sockaddrs.clear()
            known = self._sockaddrs[id(target)] = (target, self._sockaddr(target))
        sent = self._sock.sendto(data, known[1])
        if sent != len(data):
            raise OSError(errno.EMSGSIZE, f"probe sendto: sent {sent} of {len(data)} bytes")

    def receive(self, limit: int = 1024) -> list[tuple[bytes, IPAddress, int]]:
        """Everything waiting on the socket (at most ``limit`` packets): the
        packet, its sender, and when the kernel received it (CLOCK_REALTIME
        nanoseconds, ``time.time_ns()``'s clock; 0 if the kernel did not say).

        IPv4 packets include their IP header (raw socket); IPv6 ones start at
        the ICMPv6 header.  Link-local senders come without a scope suffix.
        """
        out: list[tuple[bytes, IPAddress, int]] = []
        while len(out) < limit:
            if out and not self._more():
                break
            try:
                data, ancdata, _, sender = self._sock.recvmsg(_RECV_SIZE, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            arrived = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(payload)
                    arrived = sec * 1_000_000_000 + nsec
            source = self._senders.get(sender[0])
            if source is None:
                if len(self._senders) >= _ADDRESS_CACHE:
                    self._senders.clear()  # bounded: anyone may send echo replies
                source = self._senders[sender[0]] = ip_address(str(sender[0]).split("%", 1)[0])
            out.append((data, source, arrived))
        return out

    def _more(self) -> bool:
        """Whether another datagram is waiting (SIOCINQ); True when the kernel cannot say."""
        inq = self._inq
        if inq is None:
            return True
        try:
            fcntl.ioctl(self._sock.fileno(), _SIOCINQ, inq)
        except OSError:
            self._inq = None
            return True
        return int.from_bytes(inq, sys.byteorder) > 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ProbeSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProbeSocket({self.ifname!r}, {str(self.address)!r}, ifindex={self.ifindex})"
