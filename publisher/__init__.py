"""repzone publisher: fills the zone stores that zoned serves.

For now it imports JSON-lines records by hand (``zonepub import``); syncing from Redis
builds on the same path: records -> owner keys and packed answers -> one store commit.
"""
