-- Sample CRM (MySQL 8 / MariaDB 10.5+): contacts, deals, leads and renewals.
-- closed_at, qualified_at and renewed_at are DATETIME (no time zone): they hold UTC here and
-- are read in the source's timezone (the sample sources use "UTC").
-- updated_at is a TIMESTAMP the server sets on insert and on every update; the uploader sets
-- the session's time_zone to the source's timezone, so it is read in that zone too.

CREATE TABLE contacts (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email       VARCHAR(255),
    phone       VARCHAR(50),
    first_name  VARCHAR(100),
    last_name   VARCHAR(100),
    city        VARCHAR(100),
    state       VARCHAR(100),
    zip         VARCHAR(20),
    country     VARCHAR(100)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE deals (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contact_id  INT NOT NULL,
    stage       VARCHAR(20) NOT NULL,        -- open | closed_won | closed_lost
    channel     VARCHAR(20) NOT NULL,        -- web | email | phone | partner
    amount      DECIMAL(12, 2),
    currency    CHAR(3),
    closed_at   DATETIME,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    INDEX ix_deals_updated (updated_at),
    FOREIGN KEY (contact_id) REFERENCES contacts (id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE leads (
    id            INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contact_id    INT NOT NULL,
    status        VARCHAR(20) NOT NULL,      -- new | qualified | disqualified
    qualified_at  DATETIME,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    INDEX ix_leads_updated (updated_at),
    FOREIGN KEY (contact_id) REFERENCES contacts (id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE renewals (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contact_id  INT NOT NULL,
    deal_id     INT,
    amount      DECIMAL(12, 2) NOT NULL,
    currency    CHAR(3) NOT NULL,
    renewed_at  DATETIME NOT NULL,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    INDEX ix_renewals_updated (updated_at),
    FOREIGN KEY (contact_id) REFERENCES contacts (id),
    FOREIGN KEY (deal_id) REFERENCES deals (id)
) DEFAULT CHARSET = utf8mb4;

-- Conversion Leads (README "Lead quality with CRM stages"): leads that came from Meta Lead Ads,
-- with Meta's lead id, advertising consent and creation time (UTC), and one row per stage change.
CREATE TABLE ad_leads (
    id            INT NOT NULL PRIMARY KEY,
    contact_id    INT NOT NULL,
    meta_lead_id  VARCHAR(20) NOT NULL,
    ads_consent   VARCHAR(10),
    created_at    DATETIME NOT NULL,
    FOREIGN KEY (contact_id) REFERENCES contacts (id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE lead_stage_history (
    id          INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ad_lead_id  INT NOT NULL,
    stage       VARCHAR(20) NOT NULL,
    changed_at  DATETIME NOT NULL,
    INDEX ix_stage_history_changed (changed_at),
    FOREIGN KEY (ad_lead_id) REFERENCES ad_leads (id)
) DEFAULT CHARSET = utf8mb4;
