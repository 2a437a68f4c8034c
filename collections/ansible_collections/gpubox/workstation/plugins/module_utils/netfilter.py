# Copyright: gpubox
# Apache-2.0
"""Whether root on this host may manage nftables: the question nft itself asks the kernel first.

nft starts by reading the ruleset generation over a netfilter netlink socket. Without
CAP_NET_ADMIN in the host's network namespace (an unprivileged container) the kernel answers
EPERM, which nft reports as "netlink: Error: cache initialization failed: Operation not
permitted" deep into a run. Asking the same here lets the preflight say so before anything
changes. Standard library only: it runs before nftables is installed.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETGEN = 16
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id


def request() -> bytes:
    """An nftables get-generation request, as nft sends it, asking for an acknowledgement."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)  # nfgenmsg: family, version, resource id
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
                             NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body


def read_answer(reply: bytes) -> tuple[bool, int]:
    """Whether a netlink reply ends the exchange (an acknowledgement, an error or done), and the
    errno of its error (0: none)."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(reply):
        length, kind = NLMSG_HEADER.unpack_from(reply, offset)[:2]
        if kind == NLMSG_ERROR:
            if offset + NLMSG_HEADER.size + 4 > len(reply):
                return True, 0
            return True, -struct.unpack_from("=i", reply, offset + NLMSG_HEADER.size)[0]
        if kind == NLMSG_DONE:
            return True, 0
        if length < NLMSG_HEADER.size:
            break
        offset += (length + 3) & ~3
    return False, 0


def nftables_problem() -> str:
    """Why root cannot manage nftables here ("" when it can): the kernel's own words."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as error:
        return os.strerror(error.errno) if error.errno else str(error)
    try:
        sock.settimeout(5)
        sock.bind((0, 0))
        sock.send(request())
        done, errno = False, 0
        while not done:  # the generation message, then the acknowledgement (or only an error)
            done, errno = read_answer(sock.recv(65536))
        return os.strerror(errno) if errno else ""
    except OSError as error:
        return os.strerror(error.errno) if error.errno else str(error)
    finally:
        sock.close()
