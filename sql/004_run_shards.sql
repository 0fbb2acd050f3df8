-- Large runs are split into id-range shards that any number of `execute`
-- processes, on any number of hosts, claim with FOR UPDATE SKIP LOCKED. Each
-- shard has its own checkpoint and counts; the run's counts are their sums.
CREATE TABLE campaign_run_shards (
    -- Also the second key of the shard's session advisory lock.
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES campaign_runs (id) ON DELETE CASCADE,
    shard_no     integer NOT NULL CHECK (shard_no >= 1),
    -- Customer keys after lower_key (exclusive) up to upper_key (inclusive;
    -- NULL: no upper bound). The shards of a run cover every key between them.
    lower_key    bigint NOT NULL,
    upper_key    bigint CHECK (upper_key IS NULL OR upper_key > lower_key),
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed',
                                   'interrupted', 'expired')),
    -- Last key whose message, and every one before it in the shard, the broker
    -- confirmed; NULL: none yet.
    checkpoint   bigint,
    matched      bigint NOT NULL DEFAULT 0,
    produced     bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    retryable    boolean NOT NULL DEFAULT false,
    started_at   timestamptz,
    finished_at  timestamptz,
    heartbeat_at timestamptz,
    host         text,
    pid          integer,
    error        text,
    UNIQUE (run_id, shard_no)
);
