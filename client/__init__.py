"""repzone client: the list formats and reputation lookups over DNS.

The list formats live here because they are what clients depend on; zoned and the
publisher import them so that one module owns each format:

- ``client.hashing``: Rspamd-compatible digests and encodings.
- ``client.names``: token -> owner name under a zone (ip, name, hash schemes).
- ``client.txt``: the ``v=1;key=value`` TXT encoding.
- ``client.codes``: A-record return-code bands.
- ``client.testentries``: RFC 5782 section 5 test entries.
- ``client.scoring``: Rspamd's reputation formulas.

And the reputation selectors over DNS (docs/client-design.md):

- ``client.facts`` (with ``client.urls``, ``client.tld``): facts from a message.
- ``client.selectors`` (with ``client.selectorlang``): facts -> tokens, as Rspamd derives them.
- ``client.plan``: the I/O-free lookup plan: tokens -> names, answers -> scores.
- ``client.client``: ``Client`` and ``AsyncClient`` on dnspython; ``client.cache``.
- ``client.repq``: the ``repq`` command.
"""
