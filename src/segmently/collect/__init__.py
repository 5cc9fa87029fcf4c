"""Ingestion: each wire format (native, Segment, PostHog) and file import (`importer.py`,
`vendors/`) turns what arrives into `store.Message`s or RowBatches, checked against the
limits (`limits.py`). Next hop: the store (`Store.append` through the web app's group-commit
writer, `Store.append_rows` through the importer's sink)."""
