"""A zone's ``source:`` settings for the publisher: the zone file's, or ``--redis``'s URL.

The section is read and validated once, by :mod:`zoned.sourceconf` when the zone file is
loaded (so ``zoned -t`` refuses what zonepub refuses); this module only applies the
command line's override.
"""

from __future__ import annotations

from zoned.config import ConfigError, Problem, ZoneConfig
from zoned.sourceconf import SourceSettings


def source_settings(config: ZoneConfig, redis_override: str | None = None) -> SourceSettings | None:
    """The zone's source settings, or None when the zone has no ``source``.

    ``redis_override`` (``--redis``) replaces the file's URLs, which were validated all
    the same; a bad override raises ConfigError naming the option.
    """
    settings = config.source
    if settings is None or redis_override is None:
        return settings
    try:
        return settings.with_redis(redis_override)
    except ValueError as exc:
        raise ConfigError([Problem(config.file, 0, 0, "", str(exc))]) from None
