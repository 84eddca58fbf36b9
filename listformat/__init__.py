"""repzone's list formats: what zoned serves, the publisher writes and clients read.

One module per format, each with its encode and decode; nothing here imports another
package of repzone (tests/test_layering.py pins it), so zoned, the publisher and the
client all stand on this floor:

- ``listformat.hashing``: Rspamd-compatible digests and encodings, and ``HashScheme``.
- ``listformat.names``: token -> owner name under a zone (ip, name, hash schemes).
- ``listformat.txt``: the ``v=1;key=value`` TXT encoding.
- ``listformat.codes``: A-record return-code bands.
- ``listformat.testentries``: RFC 5782 section 5 test entries.
- ``listformat.scoring``: Rspamd's reputation formulas.
- ``listformat.tokens``: Rspamd's Redis keys and the token each selector publishes.
- ``listformat.wire``: the DNS message's fixed parts (header and RR structs, flags, opcodes,
  rcodes, types, EDNS values) that zoned's and the client's byte paths share.
"""
