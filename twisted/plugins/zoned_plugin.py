"""twistd plugin: ``twistd -n zoned -c zones/ --listen 127.0.0.1 --port 5353``."""

from twisted.application.service import ServiceMaker

zoned = ServiceMaker(
    "repzone zoned", "zoned.tap", "Authoritative DNS server for repzone reputation zones", "zoned"
)
