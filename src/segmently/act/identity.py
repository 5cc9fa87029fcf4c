"""Identity verification for in-app campaigns (as Intercom does it): when a project turns
it on, the host's own server computes `userHash` = HMAC-SHA256(verification secret, user
id) in hex and hands it to the page; the SDK sends it with every campaigns request and
every event (`context.userHash`). Without the secret nobody can make the hash, so knowing
the public write key and a user id is not enough to read that user's campaigns
(`GET /v1/campaigns`) or to post events as them (dismissing their campaigns, answering
their surveys). Anonymous events (no user id) need no hash. Checked by
`web/campaign_routes.py` and, for events, `web/state.py` `AppState.write`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from segmently.act.campaigns import InAppSettings
from segmently.errors import SegmentlyError
from segmently.store import Message

CONTEXT_KEY = "userHash"


class IdentityError(SegmentlyError, ValueError):
    code = "identity_not_verified"
    status = 403


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify(settings: InAppSettings, user_id: str, given: str | None) -> None:
    """Nothing when verification is off or `given` is the user's hash; else 403."""
    if not settings.identity_verification or settings.verification_secret is None:
        return
    if not given:
        raise IdentityError("this project verifies identities: send userHash, the "
                            "HMAC-SHA256 of the user id with the verification secret")
    if not hmac.compare_digest(user_hash(settings.verification_secret, user_id),
                               given.lower()):
        raise IdentityError(f"userHash does not match user {user_id!r}")


def verify_messages(settings: InAppSettings, messages: Iterable[Message]) -> None:
    """Every message of an identified user carries that user's hash (checked, then taken
    out of the stored context: it is a credential)."""
    for m in messages:
        given = m.context.pop(CONTEXT_KEY, None) if isinstance(m.context, dict) else None
        if m.user_id is not None:
            verify(settings, m.user_id, given if isinstance(given, str) else None)
