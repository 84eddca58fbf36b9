"""What the tests share, each helper once (issue 10, item 5).

- :mod:`.repo`: where the repository, its example zones and ``../shared`` are;
- :mod:`.ports`: a free loopback port;
- :mod:`.polling`: waiting for a condition, with a timeout that fails the test;
- :mod:`.processes`: finding a peer program and stopping a process we started;
- :mod:`.publishing`: copies of the example zones and publishing records into them;
- :mod:`.zoned_process`, :mod:`.redis_server`, :mod:`.redis_cluster`: the real servers;
- :mod:`.configs`, :mod:`.answers`, :mod:`.servers`, :mod:`.queries`, :mod:`.client_zones`:
  pieces that two test modules need (no test module imports another).

``conftest.py`` keeps the fixtures only.
"""
