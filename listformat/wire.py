"""The DNS message's fixed parts (RFC 1035 4.1, RFC 6891): header and RR structs, flag
bits, opcodes, rcodes, types and EDNS values, written once for zoned's byte paths and
the client's (client.dnswire), which build and read messages without dnspython."""

from __future__ import annotations

import struct

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
U16 = struct.Struct("!H")

# Header flags (RFC 1035 4.1.1, RFC 4035 3.2).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
OPCODE_MASK = 0x7800
OPCODE_SHIFT = 11

# Opcodes and rcodes.
OPCODE_QUERY = 0
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
NOTAUTH = 9  # RFC 8945 5.3.2 (TSIG failures), RFC 5936 (a zone we do not serve)
BADVERS = 16  # extended rcode (RFC 6891 6.1.3)

# Types and classes.
T_A = 1
T_NS = 2
T_CNAME = 5
T_SOA = 6
T_MX = 15
T_TXT = 16
T_AAAA = 28
T_OPT = 41
T_IXFR = 251
T_AXFR = 252
T_MAILB = 253
T_MAILA = 254
T_ANY = 255
CLASS_IN = 1

EDNS_DO = 0x8000
OUR_PAYLOAD = 1232  # the DNS Flag Day 2020 default: no IP fragmentation on common paths
MIN_UDP = 512
MAX_TCP = 65535
