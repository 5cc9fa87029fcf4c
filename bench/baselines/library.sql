-- The built-in segment library (segments/library.py over the demo vocabulary), written by
-- hand in DuckDB SQL from the documented semantics, as an analyst would: resolve events to
-- people, one row of counts per person, one boolean per segment.
--
-- Parameters: $project_id, $as_of (naive UTC timestamp).
-- Semantics (ARCHITECTURE.md "Segment engine", segments/rules.py, segments/windows.py):
-- * an event counts when timestamp < as_of and received_at <= as_of;
-- * its person is the user its user id (else anonymous id) was last linked to, else that id;
-- * windows are half-open [as_of - N days, as_of); a day is a UTC calendar day;
-- * "active" means a track, page or screen event; "sessions" are $page events;
-- * the plan is the user's latest `plan` trait (a plain set beats a set_once);
-- * a number is a JSON number or a string spelling one ("9", " 8 ", "1e1"; not "inf");
-- * every segment is true or false, never NULL.
WITH links AS (
    SELECT alias_id, user_id
    FROM identities
    WHERE project_id = $project_id AND linked_at < $as_of AND received_at <= $as_of
    QUALIFY row_number() OVER (PARTITION BY alias_id
                               ORDER BY linked_at DESC, received_at DESC) = 1
),
ev AS (
    SELECT coalesce(l.user_id, e.user_id, e.anonymous_id) AS person_id,
           e.type, e.event, e.timestamp AS ts, e.properties
    FROM events e
    LEFT JOIN links l ON l.alias_id = coalesce(e.user_id, e.anonymous_id)
    WHERE e.project_id = $project_id AND e.timestamp < $as_of AND e.received_at <= $as_of
),
plans AS (
    SELECT coalesce(l.user_id, t.entity_id) AS person_id,
           json_extract_string(t.value, '$') AS plan
    FROM traits t
    LEFT JOIN links l ON l.alias_id = t.entity_id
    WHERE t.project_id = $project_id AND t.kind = 'user' AND t.trait = 'plan'
      AND t.set_at < $as_of AND t.received_at <= $as_of
    QUALIFY row_number() OVER (
        PARTITION BY coalesce(l.user_id, t.entity_id)
        ORDER BY t.once,                                            -- a plain set first
                 CASE WHEN t.once THEN epoch(t.set_at) ELSE -epoch(t.set_at) END,
                 t.received_at DESC) = 1
),
per_person AS (
    SELECT
        person_id,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        -- active days (track/page/screen)
        count(DISTINCT ts::DATE) FILTER (WHERE type IN ('track', 'page', 'screen')
                                         AND ts >= $as_of - INTERVAL 7 DAY) AS active_7,
        count(DISTINCT ts::DATE) FILTER (WHERE type IN ('track', 'page', 'screen')
                                         AND ts >= $as_of - INTERVAL 14 DAY) AS active_14,
        count(DISTINCT ts::DATE) FILTER (WHERE type IN ('track', 'page', 'screen')
                                         AND ts >= $as_of - INTERVAL 28 DAY) AS active_28,
        -- core actions in the last 14 days, and in the 28 days before those
        count(*) FILTER (WHERE event = 'report_viewed' AND ts >= $as_of - INTERVAL 14 DAY) AS viewed_14,
        count(*) FILTER (WHERE event = 'dashboard_viewed' AND ts >= $as_of - INTERVAL 14 DAY) AS dashboards_14,
        count(*) FILTER (WHERE event = 'report_created' AND ts >= $as_of - INTERVAL 14 DAY) AS created_14,
        count(*) FILTER (WHERE event = 'report_viewed' AND ts >= $as_of - INTERVAL 42 DAY
                         AND ts < $as_of - INTERVAL 14 DAY) AS viewed_before,
        count(*) FILTER (WHERE event = 'dashboard_viewed' AND ts >= $as_of - INTERVAL 42 DAY
                         AND ts < $as_of - INTERVAL 14 DAY) AS dashboards_before,
        count(*) FILTER (WHERE event = 'report_created' AND ts >= $as_of - INTERVAL 42 DAY
                         AND ts < $as_of - INTERVAL 14 DAY) AS created_before,
        count(*) FILTER (WHERE event = 'report_viewed' AND ts >= $as_of - INTERVAL 28 DAY) AS viewed_28,
        count(*) FILTER (WHERE event = 'dashboard_viewed' AND ts >= $as_of - INTERVAL 28 DAY) AS dashboards_28,
        count(*) FILTER (WHERE event = 'alert_created') AS alerts_ever,
        -- sessions: each of the last 3 weeks, the last 14 and 28 days, days 15-35 ago
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 7 DAY) AS sessions_w1,
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 14 DAY
                         AND ts < $as_of - INTERVAL 7 DAY) AS sessions_w2,
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 21 DAY
                         AND ts < $as_of - INTERVAL 14 DAY) AS sessions_w3,
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 14 DAY) AS sessions_14,
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 35 DAY
                         AND ts < $as_of - INTERVAL 14 DAY) AS sessions_15_35,
        count(*) FILTER (WHERE event = '$page' AND ts >= $as_of - INTERVAL 28 DAY) AS sessions_28,
        min(ts) FILTER (WHERE event = '$page') AS first_session,
        -- onboarding milestones: when each was first reached
        min(ts) FILTER (WHERE event = 'signed_up') AS signed_up_at,
        min(ts) FILTER (WHERE event = 'workspace_created') AS workspace_at,
        min(ts) FILTER (WHERE event = 'data_source_connected') AS source_at,
        min(ts) FILTER (WHERE event = 'first_report_created') AS first_report_at,
        -- feedback and billing
        -- NPS: the latest whole-number answer 0-10 ever, for who answered in 12 months
        count(*) FILTER (WHERE event = 'nps_submitted' AND ts >= $as_of - INTERVAL 12 MONTH)
            AS nps_answers,
        arg_max(TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE), ts)
            FILTER (WHERE event = 'nps_submitted'
                    AND regexp_full_match(json_extract_string(properties, '$.score'),
                                          '\s*-?[0-9]+(\.0*)?\s*')
                    AND TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE)
                        BETWEEN 0 AND 10) AS nps,
        count(*) FILTER (WHERE event = 'payment_failed' AND ts >= $as_of - INTERVAL 30 DAY) AS failed_30
    FROM ev
    GROUP BY person_id
),
flags AS (
    SELECT
        u.person_id AS user_id,
        p.plan,
        u.active_14 >= 7 AND (u.viewed_14 >= 40 OR u.dashboards_14 >= 40 OR u.created_14 >= 40)
            AS power_users,
        (u.sessions_w1 >= 2)::INT + (u.sessions_w2 >= 2)::INT + (u.sessions_w3 >= 2)::INT >= 2
            AS regular_weeks,
        u.sessions_28 > 0 AS had_session,
        u.last_seen < $as_of - INTERVAL 14 DAY AS dormant,
        coalesce(u.signed_up_at >= $as_of - INTERVAL 7 DAY, FALSE) AS new_this_week,
        (u.viewed_before > 0 AND u.viewed_14 = 0) OR (u.dashboards_before > 0 AND u.dashboards_14 = 0)
            OR (u.created_before > 0 AND u.created_14 = 0) AS at_risk,
        u.sessions_14 > 0 AND u.sessions_15_35 = 0 AND u.first_session < $as_of - INTERVAL 35 DAY
            AS resurrected,
        coalesce((u.signed_up_at < $as_of - INTERVAL 7 DAY AND u.workspace_at IS NULL)
                 OR (u.workspace_at < $as_of - INTERVAL 7 DAY AND u.source_at IS NULL)
                 OR (u.source_at < $as_of - INTERVAL 7 DAY AND u.first_report_at IS NULL), FALSE)
            AS stuck_in_onboarding,
        coalesce(u.first_report_at < u.first_seen + INTERVAL 14 DAY, FALSE) AS activated,
        coalesce(u.nps_answers > 0 AND u.nps >= 9, FALSE) AS promoters,
        coalesce(u.nps_answers > 0 AND u.nps >= 7 AND u.nps < 9, FALSE) AS passives,
        coalesce(u.nps_answers > 0 AND u.nps < 7, FALSE) AS detractors,
        coalesce(p.plan = 'trial', FALSE) AND u.first_report_at IS NOT NULL AND u.active_7 >= 3
            AS trial_likely_to_convert,
        u.failed_30 > 0 AS missed_a_payment,
        u.active_28 >= 8 AS active_8_of_28,
        u.viewed_28 > 0 AND u.dashboards_28 > 0 AND u.alerts_ever = 0 AS feature_discovery
    FROM per_person u
    LEFT JOIN plans p ON p.person_id = u.person_id
)
SELECT
    user_id,
    power_users,
    regular_weeks AND NOT power_users AS regular,
    had_session AND NOT power_users AND NOT (regular_weeks AND NOT power_users) AS occasional,
    dormant,
    new_this_week,
    at_risk,
    resurrected,
    stuck_in_onboarding,
    activated,
    promoters,
    passives,
    detractors,
    trial_likely_to_convert,
    missed_a_payment,
    active_8_of_28 AND promoters AND coalesce(plan NOT IN ('trial', 'cancelled', 'trial_expired'), FALSE)
        AND NOT missed_a_payment AS champions,
    feature_discovery
FROM flags
