"""URL scanning cost on hostile text: it must grow linearly with the input.

    python bench/urls.py

Prints milliseconds per scan for each hostile pattern at n and 4n repetitions and the
ratio (about 4 when linear; a quadratic scan shows about 16, and took minutes at 700 KB).
"""

from __future__ import annotations

import time

from client.urls import extract_text_urls

PATTERNS = {"ats": "a@", "schemes": "http://", "dots": "a.", "at-run": "ab@",
            "mailtos": "mailto:", "wwws": "www."}


def scan_ms(text: str) -> float:
    start = time.perf_counter()
    extract_text_urls(text)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    print(f"{'pattern':10s} {'n':>8s} {'ms':>9s} {'4n ms':>9s} {'ratio':>6s}")
    for name, unit in PATTERNS.items():
        n = 200_000 // len(unit)
        small = scan_ms(unit * n)
        large = scan_ms(unit * n * 4)
        print(f"{name:10s} {n:8d} {small:9.1f} {large:9.1f} {large / small:6.1f}")


if __name__ == "__main__":
    main()
