"""repzone publisher: fills the zone stores that zoned serves.

``zonepub sync`` reads Redis and judges each token (``publisher.sync``, ``publisher.judge``,
``publisher.live`` for the continuous loop); ``zonepub import`` takes JSON lines and rbldnsd
datasets (``publisher.publish``); both build entries with ``publisher.entries`` and write
through the plan and its delete guard (``publisher.plan``): one store commit per pass.
"""
