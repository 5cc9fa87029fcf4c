"""The HTTP server: ingestion, the segment API, the UI and the CLI's way in, composed by
`app.py` `create_app` (run by `segmently serve`). Routes translate to and from `collect/`
(ingestion) and `core.Project` with the read models (segments, profiles, insights)."""
