-- Sample CRM seed data (mysql). Times are relative to now, so the rows are always recent
-- enough for Meta (at most 7 days old), except deal 1006 (10 days old: never sent).
-- A first run with the sample queries sends 8 conversions: Purchase for deals 1001, 1002 (phone),
-- 1003 (phone) and 1007; Lead for leads 2001 and 2002; Subscribe for renewals 3001 and 3002.
-- Deal 1004 is open, 1005 lost, lead 2003 new and 2004 disqualified: none of them is sent.

INSERT INTO contacts (id, email, phone, first_name, last_name, city, state, zip, country) VALUES
    (101, ' John_Smith@Gmail.com ', '(650) 555-1212', 'John', 'Smith', 'Menlo Park', 'California', '94025-1234', 'United States'),
    (102, 'mary.jones@example.co.uk', '+44 20 7946 0958', 'Mary', 'Jones', 'London', NULL, 'SW1A 1AA', 'GB'),
    (103, 'Valery.Dupont@example.fr', '06 12 34 56 78', 'Valéry', 'Dupont', 'Paris', 'Île-de-France', '75001', 'France'),
    (104, 'PAT.ONEIL@EXAMPLE.NET', '415.555.0199', 'Pat', 'O''Neil', 'San Francisco', 'CA', '94107', 'USA'),
    (105, 'zoe@example.pl', '+48 12 345 67 89', 'Zoë', 'Łukasiewicz', 'Kraków', NULL, '30-001', 'PL'),
    (106, 'sam@example.com', NULL, 'Sam', 'Lee', 'Austin', 'Texas', '73301', 'US'),
    (107, 'taro@example.jp', '+81 3-1234-5678', '太郎', '山田', '東京', NULL, '100-0001', 'JP'),
    (108, 'renewals@acme-corp.example', '212-555-0147', 'Acme', 'Corp', 'New York', 'New York', '10001', 'US');

INSERT INTO deals (id, contact_id, stage, channel, amount, currency, closed_at, updated_at) VALUES
    (1001, 101, 'closed_won', 'web', 1250.00, 'USD', UTC_TIMESTAMP() - INTERVAL 30 HOUR, CURRENT_TIMESTAMP - INTERVAL 29 HOUR),
    (1002, 102, 'closed_won', 'phone', 899.99, 'GBP', UTC_TIMESTAMP() - INTERVAL 26 HOUR, CURRENT_TIMESTAMP - INTERVAL 26 HOUR),
    (1003, 103, 'closed_won', 'phone', 2300.50, 'EUR', UTC_TIMESTAMP() - INTERVAL 6 HOUR, CURRENT_TIMESTAMP - INTERVAL 5 HOUR),
    (1004, 104, 'open', 'web', 500.00, 'USD', NULL, CURRENT_TIMESTAMP - INTERVAL 3 HOUR),
    (1005, 106, 'closed_lost', 'email', 700.00, 'USD', UTC_TIMESTAMP() - INTERVAL 10 HOUR, CURRENT_TIMESTAMP - INTERVAL 10 HOUR),
    (1006, 105, 'closed_won', 'partner', 15000.00, 'PLN', UTC_TIMESTAMP() - INTERVAL 240 HOUR, CURRENT_TIMESTAMP - INTERVAL 240 HOUR),
    (1007, 107, 'closed_won', 'web', 120000.00, 'JPY', UTC_TIMESTAMP() - INTERVAL 2 HOUR, CURRENT_TIMESTAMP - INTERVAL 2 HOUR);

INSERT INTO leads (id, contact_id, status, qualified_at, updated_at) VALUES
    (2001, 104, 'qualified', UTC_TIMESTAMP() - INTERVAL 20 HOUR, CURRENT_TIMESTAMP - INTERVAL 20 HOUR),
    (2002, 106, 'qualified', UTC_TIMESTAMP() - INTERVAL 3 HOUR, CURRENT_TIMESTAMP - INTERVAL 3 HOUR),
    (2003, 105, 'new', NULL, CURRENT_TIMESTAMP - INTERVAL 1 HOUR),
    (2004, 102, 'disqualified', NULL, CURRENT_TIMESTAMP - INTERVAL 8 HOUR);

INSERT INTO renewals (id, contact_id, deal_id, amount, currency, renewed_at, updated_at) VALUES
    (3001, 108, NULL, 4800.00, 'USD', UTC_TIMESTAMP() - INTERVAL 12 HOUR, CURRENT_TIMESTAMP - INTERVAL 12 HOUR),
    (3002, 101, 1001, 1250.00, 'USD', UTC_TIMESTAMP() - INTERVAL 4 HOUR, CURRENT_TIMESTAMP - INTERVAL 4 HOUR);

-- Conversion Leads: lead 4001 (California, consent) goes new -> mql -> sql; 4002 (Texas, consent)
-- jumps from new to won; 4003 said no to advertising; 4004 was never asked. With the sample
-- policies (consent required) 5 stage events are sent: 3 for 4001 and 2 for 4002.
INSERT INTO ad_leads (id, contact_id, meta_lead_id, ads_consent, created_at) VALUES
    (4001, 104, '100000000000401', 'yes', UTC_TIMESTAMP() - INTERVAL 60 HOUR),
    (4002, 106, '100000000000402', 'yes', UTC_TIMESTAMP() - INTERVAL 30 HOUR),
    (4003, 105, '100000000000403', 'no', UTC_TIMESTAMP() - INTERVAL 12 HOUR),
    (4004, 102, '100000000000404', NULL, UTC_TIMESTAMP() - INTERVAL 10 HOUR);

INSERT INTO lead_stage_history (id, ad_lead_id, stage, changed_at) VALUES
    (101, 4001, 'new', UTC_TIMESTAMP() - INTERVAL 50 HOUR),
    (102, 4001, 'mql', UTC_TIMESTAMP() - INTERVAL 30 HOUR),
    (103, 4001, 'sql', UTC_TIMESTAMP() - INTERVAL 20 HOUR),
    (104, 4002, 'new', UTC_TIMESTAMP() - INTERVAL 25 HOUR),
    (105, 4002, 'won', UTC_TIMESTAMP() - INTERVAL 3 HOUR),
    (106, 4003, 'new', UTC_TIMESTAMP() - INTERVAL 11 HOUR),
    (107, 4004, 'new', UTC_TIMESTAMP() - INTERVAL 9 HOUR);
