-- Closed-won deals -> Purchase (value, currency, order_id = the deal id).
-- action_source is phone_call for deals closed on the phone, else system_generated.
--
-- Bind parameters the uploader passes (see README, "Reading a CRM database"):
--   :since, :until  the window of the cursor column to read: since <= updated_at < until
--   :oldest         the oldest event time Meta still accepts for this source (now - 7 days)
-- Columns are named as the uploader's template (event_name, event_time, order_id, email, ...);
-- the cursor column (updated_at) is returned too and is not sent.
-- Runs unchanged on SQLite, PostgreSQL and MySQL/MariaDB.
SELECT
    'Purchase'      AS event_name,
    d.closed_at     AS event_time,
    CASE WHEN d.channel = 'phone' THEN 'phone_call' ELSE 'system_generated' END AS action_source,
    d.id            AS order_id,
    d.amount        AS value,
    d.currency      AS currency,
    c.id            AS external_id,
    c.email         AS email,
    c.phone         AS phone,
    c.first_name    AS first_name,
    c.last_name     AS last_name,
    c.city          AS city,
    c.state         AS state,
    c.zip           AS zip,
    c.country       AS country,
    d.updated_at    AS updated_at
FROM deals d
JOIN contacts c ON c.id = d.contact_id
WHERE d.stage = 'closed_won'
  AND d.updated_at >= :since AND d.updated_at < :until
  AND d.closed_at >= :oldest
ORDER BY d.updated_at, d.id
