"""The documented event names and properties that feedback and billing metrics read.

Feedback and billing arrive as ordinary events, so they segment like everything else;
these names are the contract (docs/events.md). Numbers may arrive as numeric strings
(profile/jsonvalues.py says how values are read). Read by `feedback.py`, `billing.py`,
the product conditions (`segments/kinds/product.py`) and the built-in library.
"""

NPS_EVENT = "nps_submitted"  # properties: score (int 0-10), survey (str), comment (str)
NPS_SCORE = "score"

PAYMENT_SUCCEEDED = "payment_succeeded"  # properties: amount (number), currency, plan
PAYMENT_FAILED = "payment_failed"  # properties: amount, currency, plan, reason
PAYMENT_AMOUNT = "amount"

TRIAL_STARTED = "trial_started"  # properties: plan, trial_days
TRIAL_CONVERTED = "trial_converted"  # properties: plan
SUBSCRIPTION_CANCELLED = "subscription_cancelled"  # properties: plan, reason

PLAN_TRAIT = "plan"
