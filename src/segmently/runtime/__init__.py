"""What a running `segmently serve` keeps beside the database: the membership index
(`memberships.py`), the refresh schedule (`refresher.py`) and the profile runs kept fresh
(`profiles.py`). Threads, caches and schedules live here, never in the pipeline stages;
`web/state.py` wires them to the app."""
