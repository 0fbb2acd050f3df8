-- The reference customer table used by the demo and the tests. campaigner
-- works against any existing table with a unique integer key; this one is
-- only created by `campaigner db upgrade --reference-schema`.

CREATE TABLE IF NOT EXISTS user_data (
    id                bigint PRIMARY KEY,
    email             text,
    phone             text,
    first_name        text,
    last_name         text,
    country           text,
    language          text,
    city              text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_active_at    timestamptz,
    email_consent     boolean NOT NULL DEFAULT false,
    sms_consent       boolean NOT NULL DEFAULT false,
    whatsapp_consent  boolean NOT NULL DEFAULT false,
    push_token        text,
    lifetime_value    numeric(12, 2) NOT NULL DEFAULT 0,
    attributes        jsonb NOT NULL DEFAULT '{}'::jsonb
);
