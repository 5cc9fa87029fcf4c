"""The user page as the browser loads it, end to end, against a served database.

    python bench/user_page.py --url http://127.0.0.1:8000 --key sk_... [--flow one-pass]

`--flow one-pass` (this version's page): `/at-refresh`, `/traits` and `/explanations`
in parallel. `--flow per-segment` (the page before, which any version serves):
`/at-refresh` and `/traits` in parallel, then `/api/segments/{name}/explain/{id}` for
each of the user's segments in turn. Five members of `--segment`, each page loaded once
to warm and twice timed; the median and slowest wall time are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", required=True)
    ap.add_argument("--segment", default="power_users")
    ap.add_argument("--flow", choices=["one-pass", "per-segment"], default="one-pass")
    args = ap.parse_args()
    client = httpx.Client(base_url=args.url, timeout=600,
                          headers={"Authorization": f"Bearer {args.key}"})
    pool = ThreadPoolExecutor(3)
    get = lambda path: client.get(path).raise_for_status().json()  # noqa: E731

    def page(user: str) -> tuple[float, int]:
        base = f"/api/users/{user}"
        began = time.perf_counter()
        if args.flow == "one-pass":
            _, _, why = pool.map(get, [base + "/at-refresh", base + "/traits",
                                       base + "/explanations"])
            n = len(why["segments"])
        else:
            profile, _ = pool.map(get, [base + "/at-refresh", base + "/traits"])
            for name in profile["segments"]:
                get(f"/api/segments/{name}/explain/{user}")
            n = len(profile["segments"])
        return time.perf_counter() - began, n

    users = get(f"/api/segments/{args.segment}/members?limit=5")["members"]
    for user in users:
        page(user)
    took = [page(user) for user in users for _ in range(2)]
    walls = [t for t, _ in took]
    print(f"{args.flow}: segments per user {[n for _, n in took][::2]}, median "
          f"{statistics.median(walls):.2f} s, slowest {max(walls):.2f} s")


if __name__ == "__main__":
    main()
