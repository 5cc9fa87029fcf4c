"""Latency of the JSON routes behind the UI pages, on a served database.

    python bench/ui_routes.py --url http://127.0.0.1:8000 --key sk_... [--segment power_users]
    python bench/ui_routes.py --key sk_... --after-refresh

Serve a demo first (`segmently --db big.duckdb demo --users 200000`, `segments refresh`,
`segmently serve`). Each route is called `--repeat` times one
after the other, client-side wall time (HTTP included); the median and the slowest are
printed. Nothing is cached between calls except what the engine caches itself.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

RULE = {"all": [{"kind": "performed", "event": "report_viewed", "at_least": 5,
                 "window": {"last": 30}}, {"kind": "plan", "is": "growth"}]}


def routes(segment: str, user: str) -> list[tuple[str, str, dict | None]]:
    s = f"/api/segments/{segment}"
    return [("GET", "/api/overview", None), ("GET", "/api/segments", None),
            ("GET", s, None), ("GET", "/api/catalog", None),
            ("POST", "/api/rules/preview", {"rule": RULE}),
            ("GET", f"{s}/table?sort=engagement_score&desc=true&limit=25", None),
            ("GET", f"{s}/table?sort=engagement_score&desc=true&limit=25&offset=5000", None),
            ("GET", f"{s}/breakdown?by=plan", None), ("GET", f"{s}/transitions", None),
            ("GET", f"{s}/explain/{user}", None), ("GET", f"{s}/export.csv", None),
            ("GET", "/api/insights/funnel", None), ("GET", "/api/insights/adoption", None),
            ("GET", f"/api/users/{user}", None), ("GET", f"/api/users/{user}/at-refresh", None),
            ("GET", f"/api/users/{user}/explanations", None),
            ("GET", f"/api/users/{user}/timeline", None),
            *[("GET", f"/api/insights/{q}", None) for q in INSIGHTS]]


# Each insight page's first call, computed (fresh=true) and then as kept by serve.
INSIGHTS = [
    "campaign_results?campaign=show_alerts",
    "segment_flow?period=week&periods=8", "segment_time?segments=regular",
    "segment_next?segment=at_risk",
    "retention?period=week", "retention?start_event=signed_up&segments=early_alert,no_early_alert",
    "stickiness", "feature_stickiness", "lifecycle",
    "friction?steps=signed_up,workspace_created,data_source_connected&window=3",
    "feature_lift?outcome=retained_d30&days=7",
    "discovery_rule?outcome=segment&segment=power_users",
]
INSIGHTS = [q + ("&" if "?" in q else "?") + "fresh=true" for q in INSIGHTS] + INSIGHTS


def after_refresh(client: httpx.Client, segment: str) -> None:
    """Pages keep answering from the previous profile run while the new one is recorded."""
    path = f"/api/segments/{segment}/table?sort=health_score&desc=true&limit=25"
    began = time.perf_counter()
    client.post("/api/refresh").raise_for_status()
    print(f"refresh {time.perf_counter() - began:6.1f} s")
    while True:
        start = time.perf_counter()
        page = client.get(path).json()
        print(f"{start - began:6.1f} s: table {time.perf_counter() - start:5.2f} s, members as "
              f"of {page['as_of']}, metrics as of {page['metrics_as_of']}", flush=True)
        if page["metrics_as_of"] == page["as_of"]:
            return
        time.sleep(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--segment", default="power_users")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="only the routes whose path starts so "
                        "(e.g. /api/insights/)")
    parser.add_argument("--after-refresh", action="store_true",
                        help="instead: refresh, then time a member table every 10 s until "
                             "its metrics are of the new instant")
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=600,
                      headers={"Authorization": f"Bearer {args.key}"}) as client:
        if args.after_refresh:
            after_refresh(client, args.segment)
            return
        user = client.get(f"/api/segments/{args.segment}/members?limit=1").json()["members"][0]
        for method, path, body in routes(args.segment, user):
            if not path.startswith(args.only):
                continue
            took = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                r = client.request(method, path, json=body)
                took.append(time.perf_counter() - start)
                if r.status_code >= 400:  # e.g. a segment this database lacks: said, not fatal
                    print(f"{method:4} {path:70} {r.status_code}: {r.json().get('message')}")
                    break
            if r.status_code >= 400:
                continue
            print(f"{method:4} {path:70} median {statistics.median(took):6.2f} s"
                  f"   max {max(took):6.2f} s")


if __name__ == "__main__":
    main()
