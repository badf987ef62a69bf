-- Sample CRM (SQLite): contacts, deals, leads and renewals.
-- Times are TEXT 'YYYY-MM-DD HH:MM:SS' in UTC (SQLite's own datetime() format), so they compare
-- correctly as text; the sample sources use timezone = "UTC".
-- updated_at is set on insert and, by a trigger, on every update that does not set it itself.

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    email       TEXT,
    phone       TEXT,
    first_name  TEXT,
    last_name   TEXT,
    city        TEXT,
    state       TEXT,
    zip         TEXT,
    country     TEXT
);

CREATE TABLE deals (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    stage       TEXT NOT NULL,               -- open | closed_won | closed_lost
    channel     TEXT NOT NULL,               -- web | email | phone | partner
    amount      NUMERIC(12, 2),
    currency    TEXT,
    closed_at   TEXT,
    updated_at  TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX ix_deals_updated ON deals (updated_at);

CREATE TABLE leads (
    id            INTEGER PRIMARY KEY,
    contact_id    INTEGER NOT NULL REFERENCES contacts(id),
    status        TEXT NOT NULL,             -- new | qualified | disqualified
    qualified_at  TEXT,
    updated_at    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX ix_leads_updated ON leads (updated_at);

CREATE TABLE renewals (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    deal_id     INTEGER REFERENCES deals(id),
    amount      NUMERIC(12, 2) NOT NULL,
    currency    TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX ix_renewals_updated ON renewals (updated_at);

CREATE TRIGGER deals_touch AFTER UPDATE ON deals WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE deals SET updated_at = datetime('now') WHERE id = NEW.id; END;
CREATE TRIGGER leads_touch AFTER UPDATE ON leads WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE leads SET updated_at = datetime('now') WHERE id = NEW.id; END;
CREATE TRIGGER renewals_touch AFTER UPDATE ON renewals WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE renewals SET updated_at = datetime('now') WHERE id = NEW.id; END;

-- Conversion Leads (README "Lead quality with CRM stages"): leads that came from Meta Lead Ads,
-- with Meta's lead id, advertising consent and creation time (UTC), and one row per stage change.
CREATE TABLE ad_leads (
    id            INTEGER PRIMARY KEY,
    contact_id    INTEGER NOT NULL REFERENCES contacts(id),
    meta_lead_id  TEXT NOT NULL,
    ads_consent   TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE lead_stage_history (
    id          INTEGER PRIMARY KEY,
    ad_lead_id  INTEGER NOT NULL REFERENCES ad_leads(id),
    stage       TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);
CREATE INDEX ix_stage_history_changed ON lead_stage_history (changed_at);
