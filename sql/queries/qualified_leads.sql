-- Qualified leads -> the source's event_name (set event_name = "Lead", or your own name, in
-- the source's settings). order_id = the lead id: the basis of a stable event id, so a lead is
-- sent once however often its row changes later.
--
-- Bind parameters: :since, :until (the window of updated_at), :oldest (see closed_won_deals.sql).
-- Runs unchanged on SQLite, PostgreSQL and MySQL/MariaDB.
SELECT
    l.qualified_at  AS event_time,
    l.id            AS order_id,
    c.id            AS external_id,
    c.email         AS email,
    c.phone         AS phone,
    c.first_name    AS first_name,
    c.last_name     AS last_name,
    c.city          AS city,
    c.state         AS state,
    c.zip           AS zip,
    c.country       AS country,
    l.updated_at    AS updated_at
FROM leads l
JOIN contacts c ON c.id = l.contact_id
WHERE l.status = 'qualified'
  AND l.updated_at >= :since AND l.updated_at < :until
  AND l.qualified_at >= :oldest
ORDER BY l.updated_at, l.id
