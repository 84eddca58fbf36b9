"""The root of the publisher's exceptions, as dnspython's ``DNSException`` is of its own.

Catch :class:`PublisherError` to catch every error the publisher raises on purpose;
each subclass lives beside the code that raises it, and those that reject a value are
also :class:`ValueError`, as they always were::

    PublisherError
    |-- RecordError     (publisher.entries, ValueError) a record cannot be published
    |   `-- DatasetError  (publisher.rbldnsd) an rbldnsd dataset line cannot be read
    |-- MapError        (publisher.processors, ValueError) an exclusion map cannot be read
    |-- LayoutError     (publisher.layouts, ValueError) a Redis hash is not of its layout
    |-- LearnError      (publisher.learn, ValueError) verdicts or settings learn cannot use
    |-- SourceError     (publisher.source) Redis is unreachable or answered an error
    `-- PlanRefused     (publisher.plan) the plan would delete more than the guard allows

zoned's errors the publisher lets through (``ConfigError``, ``StoreError``) stay
zoned's (:mod:`zoned.errors`).
"""

from __future__ import annotations


class PublisherError(Exception):
    """Something the publisher was asked to do cannot be done."""
