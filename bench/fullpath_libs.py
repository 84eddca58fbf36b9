"""Why the full path uses dnspython: parse + answer + render cost of dnspython vs dnslib.

    pip install dnslib   # only for this comparison; repzone does not depend on it
    python bench/fullpath_libs.py

Times the work the full path does per query -- parse the query, build a response with
one TXT answer (or an SOA in authority), render it with a size limit -- in each library,
and checks what each does with a malformed query.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

QNAME = "1.2.0.192.bl.example.net."
TXT = "v=1;n=120;s=110;h=4;p=6;sc=0.87;l=1763769600"
SOA = "ns1.example.net. hostmaster.example.net. 1795306230 3600 600 604800 60"


def dnspython_answer(wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    rrset = dns.rrset.from_text(query.question[0].name, 300, "IN", "TXT", f'"{TXT}"')
    response.answer.append(rrset)
    soa = dns.rrset.from_text("bl.example.net.", 60, "IN", "SOA", SOA)
    response.authority.append(soa)
    return response.to_wire(max_size=1232)


def dnslib_answer(wire: bytes) -> bytes:
    import dnslib

    query = dnslib.DNSRecord.parse(wire)
    reply = query.reply()
    reply.add_answer(dnslib.RR(query.q.qname, dnslib.QTYPE.TXT, ttl=300, rdata=dnslib.TXT(TXT)))
    reply.add_auth(dnslib.RR("bl.example.net.", dnslib.QTYPE.SOA, ttl=60, rdata=dnslib.SOA(
        "ns1.example.net.", "hostmaster.example.net.", (1795306230, 3600, 600, 604800, 60))))
    return bytes(reply.pack())


def timed(label: str, func: Callable[[bytes], bytes], wire: bytes, n: int = 20_000) -> None:
    func(wire)
    start = time.perf_counter()
    for _ in range(n):
        func(wire)
    print(f"{label:10s} {(time.perf_counter() - start) / n * 1e6:7.1f} us per query")


def main() -> None:
    wire = dns.message.make_query(QNAME, "TXT", use_edns=0).to_wire()
    timed("dnspython", dnspython_answer, wire)
    try:
        import dnslib  # noqa: F401
    except ImportError:
        print("dnslib       not installed (pip install dnslib to compare)")
        return
    timed("dnslib", dnslib_answer, wire)
    junk = wire + b"\x00\x01trailing"
    for label, func in (("dnspython", dnspython_answer), ("dnslib", dnslib_answer)):
        try:
            func(junk)
            print(f"{label:10s} accepted a query with trailing junk")
        except Exception as exc:  # noqa: BLE001 - reporting what each library raises
            print(f"{label:10s} rejected trailing junk: {type(exc).__name__}")


if __name__ == "__main__":
    main()
