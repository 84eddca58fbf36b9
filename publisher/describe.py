"""Store keys and packed answers as people read them, for dry runs and logs."""

from __future__ import annotations

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from listformat import names
from publisher.plan import Plan
from zoned import keys
from zoned.config import ZoneConfig
from zoned.packed import PackedError, unpack


def render_key(config: ZoneConfig, key: bytes) -> str:
    """The owner (or network) a store key stands for."""
    if config.scheme.kind == "ip":
        try:
            network = keys.key_network(key)
        except ValueError:
            return repr(key)
        if network.num_addresses == 1:
            return f"{names.reverse_ip(network.network_address)}.{config.origin} ({network})"
        return f"{network} (network)"
    labels = key.split(b".")
    labels.reverse()
    return ".".join(label.decode("ascii", "replace") for label in labels) + "." + config.origin


def describe_answer(packed: bytes) -> str:
    """The records of a packed answer in presentation form."""
    try:
        parts = []
        for record in unpack(packed):
            rdtype = dns.rdatatype.RdataType.make(record.rtype)
            rdata = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, record.rdata, 0,
                                        len(record.rdata))
            parts.append(f"{rdtype.name} {rdata.to_text()}")
        return ", ".join(parts)
    except (PackedError, dns.exception.DNSException) as exc:
        return f"<unreadable: {exc}>"


def plan_text(config: ZoneConfig, plan: Plan) -> str:
    """A plan as ``--dry-run`` shows it: the summary and examples of each change."""

    def render(key: bytes) -> str:
        return render_key(config, key)

    return f"zone {config.origin} (dry run): " + plan.describe(render, describe_answer)
