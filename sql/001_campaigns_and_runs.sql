-- campaigner's own tables: campaign definitions, one ledger row per
-- (campaign, slot), and the recipients a run could not deliver.

CREATE TABLE campaigns (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE
                   CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'paused', 'archived')),
    -- schedule, timezone and cohort are validated by campaigner when saved and
    -- again before every run, never by constraints: a bad row must be reported
    -- by name, not make the whole table unreadable.
    schedule       text NOT NULL,
    timezone       text NOT NULL DEFAULT 'UTC',
    cohort         text NOT NULL,
    channel        text NOT NULL
                   CHECK (channel IN ('email', 'sms', 'whatsapp', 'push')),
    topic          text NOT NULL,
    -- An id or a payload, passed through to senders untouched.
    template       jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Customer columns copied into each message.
    message_fields text[] NOT NULL DEFAULT '{}',
    batch_size     integer NOT NULL DEFAULT 5000
                   CHECK (batch_size BETWEEN 1 AND 100000),
    active_from    timestamptz,
    active_until   timestamptz,
    -- How late a slot may still start.
    grace          interval NOT NULL DEFAULT '15 minutes'
                   CHECK (grace >= '0'::interval),
    -- How long after its slot a run may still produce; also the messages' expiry.
    deadline       interval NOT NULL DEFAULT '4 hours'
                   CHECK (deadline > '0'::interval),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (active_until IS NULL OR active_from IS NULL OR active_from < active_until)
);

CREATE TABLE campaign_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The slot's UTC instant; for a manual run, the instant it was asked for.
    scheduled_for  timestamptz NOT NULL,
    manual         boolean NOT NULL DEFAULT false,
    status         text NOT NULL
                   CHECK (status IN ('running', 'succeeded', 'completed_with_errors',
                                     'failed', 'interrupted', 'missed', 'expired')),
    -- What the run was started with, so later edits of the campaign cannot
    -- change what an unfinished run means.
    cohort         text,
    settings       jsonb NOT NULL DEFAULT '{}'::jsonb,
    matched        bigint NOT NULL DEFAULT 0,
    produced       bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    -- Last user id whose message, and every one before it, the broker confirmed.
    checkpoint     bigint,
    attempts       integer NOT NULL DEFAULT 1,
    retryable      boolean NOT NULL DEFAULT false,
    started_at     timestamptz,
    finished_at    timestamptz,
    heartbeat_at   timestamptz,
    host           text,
    pid            integer,
    error          text,
    UNIQUE (campaign_id, scheduled_for)
);

CREATE INDEX campaign_runs_status_idx ON campaign_runs (status)
    WHERE status IN ('running', 'interrupted', 'failed');

CREATE TABLE campaign_run_failures (
    run_id      bigint NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL,
    reason      text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, user_id)
);
