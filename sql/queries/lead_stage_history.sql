-- Conversion Leads: one event per CRM stage change (README "Lead quality with CRM stages").
-- The source maps `stage` to event names with its stage_map and sets conversion_leads,
-- consent and ldu; the cursor is changed_at (history rows are never updated, only added).
--
-- Bind parameters: :since, :until (the window of changed_at).
-- Runs unchanged on SQLite, PostgreSQL and MySQL/MariaDB (tested on each).
SELECT
    h.stage          AS stage,
    h.changed_at     AS event_time,
    l.meta_lead_id   AS lead_id,
    l.created_at     AS lead_created_at,
    l.ads_consent    AS consent,
    c.email          AS email,
    c.phone          AS phone,
    c.first_name     AS first_name,
    c.last_name      AS last_name,
    c.city           AS city,
    c.state          AS state,
    c.zip            AS zip,
    c.country        AS country,
    h.changed_at     AS changed_at
FROM lead_stage_history h
JOIN ad_leads l ON l.id = h.ad_lead_id
JOIN contacts c ON c.id = l.contact_id
WHERE h.changed_at >= :since AND h.changed_at < :until
ORDER BY h.changed_at, h.id
