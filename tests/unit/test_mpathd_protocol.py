"""The control protocol's wire format: requests, replies, error numbers (``ipmp.mpathd.protocol``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipmp.mpathd import protocol
from ipmp.mpathd.protocol import (
    IPMP_EPROTO,
    MPATHD_MIN_RED_ERROR,
    MPATHD_SYS_ERROR,
    ProtocolError,
    Reply,
    Request,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    errmsg,
)

ifnames = st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), max_size=31)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@given(st.sampled_from(protocol.OPS), ifnames, st.integers(0, 2**32 - 1))
def test_request_round_trip(op: protocol.Op, ifname: str, min_redundancy: int) -> None:
    request = Request(op, ifname, min_redundancy)
    line = encode_request(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == request
    assert decode_request(line.rstrip(b"\n")) == request


@given(st.integers(0, 10), st.integers(0, 200), st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_reply_round_trip(mpathd_error: int, sys_error: int, data: dict[str, Any]) -> None:
    reply = Reply(mpathd_error, sys_error, data)
    line = encode_reply(reply)
    assert line.count(b"\n") == 1
    assert decode_reply(line) == reply


def test_wire_format_is_one_versioned_json_object() -> None:
    assert encode_request(Request("offline", "hme0")) == (
        b'{"ifname":"hme0","min_redundancy":1,"op":"offline","v":1}\n')
    assert encode_reply(Reply()) == b'{"data":{},"mpathd_error":0,"sys_error":0,"v":1}\n'
    assert decode_request(b'{"v": 1, "op": "ping"}') == Request("ping", "", 1)


@pytest.mark.parametrize("line", [
    b"",
    b"not json\n",
    b"\xff\xfe\n",
    b"[]\n",
    b'"ping"\n',
    b'{"op": "ping"}\n',
    b'{"v": 2, "op": "ping"}\n',
    b'{"v": true, "op": "ping"}\n',
    b'{"v": "1", "op": "ping"}\n',
    b'{"v": 1}\n',
    b'{"v": 1, "op": 0}\n',
    b'{"v": 1, "op": "ping", "extra": 1}\n',
    b'{"v": 1, "op": "offline", "ifname": 7}\n',
    b'{"v": 1, "op": "offline", "ifname": "' + b"x" * 32 + b'"}\n',
    b'{"v": 1, "op": "offline", "ifname": "hme0\\n"}\n',
    b'{"v": 1, "op": "offline", "min_redundancy": -1}\n',
    b'{"v": 1, "op": "offline", "min_redundancy": true}\n',
    b'{"v": 1, "op": "offline", "min_redundancy": 4294967296}\n',
    b'{"v": 1, "op": "offline", "min_redundancy": 1.0}\n',
    b"[" * 5000 + b"]" * 5000 + b"\n",
])
def test_bad_requests_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    assert info.value.unknown_op is None


def test_unknown_command_is_told_apart() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(b'{"v": 1, "op": "setoindex"}\n')
    assert info.value.unknown_op == "setoindex"


@pytest.mark.parametrize("line", [
    b"{}\n",
    b'{"v": 1}\n',
    b'{"v": 1, "mpathd_error": -1}\n',
    b'{"v": 1, "mpathd_error": 0, "data": []}\n',
    b'{"v": 1, "mpathd_error": 0, "sys_error": "EPERM"}\n',
    b'{"v": 1, "mpathd_error": 0, "surprise": 0}\n',
    b'{"v": 0, "mpathd_error": 0}\n',
])
def test_bad_replies_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(line)


def test_error_numbers_and_texts_are_libipmps() -> None:
    assert (protocol.MPATHD_SUCCESS, MPATHD_SYS_ERROR, MPATHD_MIN_RED_ERROR,
            protocol.MPATHD_FAILBACK_DISABLED,
            protocol.MPATHD_FAILBACK_PARTIAL, IPMP_EPROTO) == (0, 1, 2, 3, 4, 10)
    assert errmsg(MPATHD_MIN_RED_ERROR) == "minimum failover redundancy not met"
    assert errmsg(protocol.MPATHD_FAILBACK_PARTIAL) == "unable to completely fail back"
    assert errmsg(protocol.IPMP_EUNKIF) == "interface is not using IPMP"
    assert errmsg(99) == "<unknown error>"
    assert Reply().ok and not Reply(MPATHD_MIN_RED_ERROR).ok
