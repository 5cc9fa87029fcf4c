"""A segment just saved, as its page reads it: save it, then call its member table until
the answer holds members, then a few times more, against a served database.

    python bench/saved_segment.py --url http://127.0.0.1:8000 --key sk_...

Before, a saved segment's pages evaluated it live on every call until the next refresh;
now it is counted once in the background and its table answers `counting: true`
meanwhile. Printed: the save, the time until the table first held members, and the
median and slowest of five calls after that. The segment is deleted at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

import httpx

RULE = {"all": [{"kind": "performed", "event": "report_viewed", "at_least": 3,
                 "window": {"last": 30}}, {"kind": "plan", "is": "growth"}]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    client = httpx.Client(base_url=args.url, timeout=600,
                          headers={"Authorization": f"Bearer {args.key}"})
    name = f"bench_{secrets.token_hex(3)}"
    table = f"/api/segments/{name}/table?sort=engagement_score&desc=true&limit=25"
    began = time.perf_counter()
    client.post("/api/segments", json={"name": name, "rule": RULE}).raise_for_status()
    saved = time.perf_counter() - began
    calls = 0
    try:
        while True:
            calls += 1
            page = client.get(table).raise_for_status().json()
            if not page.get("counting"):
                break
            time.sleep(0.25)
        first = time.perf_counter() - began
        after = []
        for _ in range(5):
            start = time.perf_counter()
            client.get(table).raise_for_status()
            after.append(time.perf_counter() - start)
        print(f"save {saved:.2f} s; members in the table after {first:.2f} s ({calls} calls, "
              f"{page['total']:,} members, {page.get('source')}); then median "
              f"{statistics.median(after):.2f} s, slowest {max(after):.2f} s")
    finally:
        client.delete(f"/api/segments/{name}")


if __name__ == "__main__":
    main()
