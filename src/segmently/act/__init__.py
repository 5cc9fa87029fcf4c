"""Acting on segments, the stage after `segments/`: a refresh's entries and exits come in,
requests to other tools go out. Destinations and their subscriptions (`destinations.py`),
the outbox a refresh writes in its own transaction (`outbox.py`), what each kind of
destination is sent (`payloads.py`), one signed HTTP delivery (`sending.py`), and the
worker that delivers in order with retries (`delivery.py`)."""
