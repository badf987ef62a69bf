-- Renewals -> the source's event_name (set event_name = "Subscribe", or a custom name such as
-- "Renewal", in the source's settings), with value and currency; order_id = the renewal id.
--
-- Bind parameters: :since, :until (the window of updated_at), :oldest (see closed_won_deals.sql).
-- Runs unchanged on SQLite, PostgreSQL and MySQL/MariaDB.
SELECT
    r.renewed_at    AS event_time,
    r.id            AS order_id,
    r.amount        AS value,
    r.currency      AS currency,
    c.id            AS external_id,
    c.email         AS email,
    c.phone         AS phone,
    c.first_name    AS first_name,
    c.last_name     AS last_name,
    c.city          AS city,
    c.state         AS state,
    c.zip           AS zip,
    c.country       AS country,
    r.updated_at    AS updated_at
FROM renewals r
JOIN contacts c ON c.id = r.contact_id
WHERE r.updated_at >= :since AND r.updated_at < :until
  AND r.renewed_at >= :oldest
ORDER BY r.updated_at, r.id
