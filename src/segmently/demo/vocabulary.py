"""The demo product's vocabulary: every event name, property and trait the generator emits.

The generator, the demo's workspace (`demo/workspace.py`, which declares them as the
`Vocabulary` the built-in library is given) and the tests build on these names, so they
live here as constants (documented in docs/events.md) rather than as string literals
scattered through the generator. Feedback and billing names are the profile stage's
contract (`segmently.profile.vocabulary`) and are re-exported, not redefined.
"""

from __future__ import annotations

from segmently.act.targeting import SHOWN
from segmently.profile.vocabulary import (
    NPS_EVENT,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    SUBSCRIPTION_CANCELLED,
    TRIAL_CONVERTED,
    TRIAL_STARTED,
)

SOURCE = "demo"  # the events.source column of every generated row
LIBRARY = "segmently-demo"  # context.library.name

# -- onboarding journey, in order ------------------------------------------------------
SIGNED_UP = "signed_up"  # method (email|google|sso), invited (bool)
WORKSPACE_CREATED = "workspace_created"  # workspace_id
DATA_SOURCE_CONNECTED = "data_source_connected"  # source_type
FIRST_REPORT_CREATED = "first_report_created"  # report_id
TEAMMATE_INVITED = "teammate_invited"  # invitee_role
MILESTONES = (SIGNED_UP, WORKSPACE_CREATED, DATA_SOURCE_CONNECTED, FIRST_REPORT_CREATED,
              TEAMMATE_INVITED)

# -- features ----------------------------------------------------------------------------
REPORT_VIEWED = "report_viewed"  # report_id, source (list|search|link|email)
DASHBOARD_VIEWED = "dashboard_viewed"  # dashboard_id
REPORT_CREATED = "report_created"  # report_id, chart (line|bar|table|pie)
CORE_FEATURES = (REPORT_VIEWED, DASHBOARD_VIEWED, REPORT_CREATED)

ALERT_CREATED = "alert_created"  # alert_id, channel (email|slack|webhook)
EXPORT_DOWNLOADED = "export_downloaded"  # format (csv|xlsx|pdf), rows (int)
API_CALLED = "api_called"  # endpoint, status (int)
SQL_QUERY_RUN = "sql_query_run"  # duration_ms (int), rows (int)
ADVANCED_FEATURES = (ALERT_CREATED, EXPORT_DOWNLOADED, API_CALLED, SQL_QUERY_RUN)
FEATURES = CORE_FEATURES + ADVANCED_FEATURES

PAGE = "$page"  # type page: path, title (one per session, its first event)
IDENTIFY = "$identify"  # type identify: user traits
GROUP = "$group"  # type group: account traits
CAMPAIGN_SHOWN = SHOWN  # the SDK's exposure: campaign, campaign_version, kind (docs/sdk.md)

# -- feedback and billing (the profile stage's contract) ---------------------------------
NPS_SUBMITTED = NPS_EVENT  # score (int 0-10), survey ("nps-YYYY-MM"), comment (optional)
BILLING = (TRIAL_STARTED, TRIAL_CONVERTED, PAYMENT_SUCCEEDED, PAYMENT_FAILED,
           SUBSCRIPTION_CANCELLED)
# trial_started: plan, trial_days | trial_converted: plan, mrr
# payment_succeeded: amount, currency, plan, invoice_id
# payment_failed: amount, currency, plan, invoice_id, reason
# subscription_cancelled: plan, reason (a trial that ends unconverted: reason trial_expired)
CANCEL_REASONS = ("too_expensive", "missing_features", "switched_competitor", "not_using")
TRIAL_EXPIRED_REASON = "trial_expired"
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card")
CURRENCIES = ("USD", "EUR", "GBP")
TRIAL_DAYS = 14
BILLING_PERIOD_DAYS = 30
PAYMENT_RETRY_DAYS = 3

# -- plans -----------------------------------------------------------------------------
TRIAL = "trial"
PAID_PLANS = ("starter", "growth", "enterprise")
CANCELLED = "cancelled"
TRIAL_EXPIRED = "trial_expired"
PLANS = (TRIAL, *PAID_PLANS, CANCELLED, TRIAL_EXPIRED)  # values of the `plan` traits
BASE_PRICE = {"starter": 29, "growth": 99, "enterprise": 499}  # per month, + per seat
SEAT_PRICE = {"starter": 10, "growth": 20, "enterprise": 40}

# -- traits ------------------------------------------------------------------------------
USER_TRAITS = ("email", "name", "role", "plan", "created_at", "account_id")
ACCOUNT_TRAITS = ("name", "plan", "industry", "seats", "mrr", "created_at")
PLAN_CHANGE_ACCOUNT_TRAITS = ("plan", "mrr")  # group call on conversion / cancellation
ROLES = ("admin", "analyst", "engineer", "manager", "viewer")
INDUSTRIES = ("software", "retail", "finance", "healthcare", "media", "education",
              "logistics", "manufacturing")

# -- personas (ground truth of the generator; never stored as traits) --------------------
POWER = "power"
REGULAR = "regular"
OCCASIONAL = "occasional"
DORMANT = "dormant"  # active during the trial, silent after it expired
CHURNED = "churned"  # paid, faded out, the account cancelled
RESURRECTED = "resurrected"  # active, silent for 21+ days, active again at the end
PERSONAS = (POWER, REGULAR, OCCASIONAL, DORMANT, CHURNED, RESURRECTED)
RESURRECTION_GAP_DAYS = 21  # at least this long without events before coming back
RESURRECTED_RECENT_DAYS = 14  # and back within this many days of the end
DORMANT_QUIET_DAYS = 2  # dormant users stop at most this long after their trial ended
