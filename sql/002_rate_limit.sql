-- A per-campaign ceiling on messages per second (SMS and WhatsApp gateways
-- have quotas). NULL means as fast as PostgreSQL and the broker allow.
ALTER TABLE campaigns
    ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit > 0);
