"""Changing a destination keeps the secrets the change leaves out (or sends as null), and
re-enables one the worker disabled."""

from __future__ import annotations

from receivers import shop

from segmently.store import Store


def test_an_update_keeps_left_out_secrets_and_re_enables(store: Store) -> None:
    project = shop(store)
    made = project.save_destination({"name": "hook", "kind": "webhook",
                                     "url": "https://example.com/a",
                                     "subscriptions": [{"segments": ["buyers"]}]})
    assert made.secret is not None and made.secret.startswith("whsec_")
    project.save_destination(made.model_copy(update={"enabled": False,
                                                     "disabled_reason": "410"}))
    changed = project.update_destination("hook", {
        "kind": "webhook", "url": "https://example.com/b", "secret": None,
        "subscriptions": [{"segments": ["buyers"]}]})
    assert (changed.url, changed.secret, changed.enabled, changed.disabled_reason) == \
        ("https://example.com/b", made.secret, True, None)
    assert project.destination("hook") == changed
