-- The job platform's schema for PostgreSQL. Ids are UUIDs; instants are timestamptz;
-- `doc` columns hold the whole object as jsonb, with the columns queries need copied out of
-- it; counts are bigint.

CREATE TABLE teams (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id UUID NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    team_id      UUID NOT NULL REFERENCES teams(id),
    created_by   UUID NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);

CREATE TABLE credentials (
    id         UUID PRIMARY KEY,
    team_id    UUID NOT NULL REFERENCES teams(id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    secret     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE targets (
    id            UUID PRIMARY KEY,
    team_id       UUID NOT NULL REFERENCES teams(id),
    name          TEXT NOT NULL,
    address       TEXT NOT NULL,
    credential_id UUID REFERENCES credentials(id),
    doc           JSONB NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX targets_team_address ON targets (team_id, address);

CREATE TABLE target_groups (
    id      UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     JSONB NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE scripts (
    id      UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     JSONB NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE script_versions (
    id        UUID PRIMARY KEY,
    script_id UUID NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    status    TEXT NOT NULL,
    doc       JSONB NOT NULL,
    UNIQUE (script_id, version)
);

CREATE TABLE playbooks (
    id      UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     JSONB NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE playbook_versions (
    id          UUID PRIMARY KEY,
    playbook_id UUID NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    doc         JSONB NOT NULL,
    UNIQUE (playbook_id, version)
);

CREATE TABLE staged_files (
    id        UUID PRIMARY KEY,
    team_id   UUID NOT NULL REFERENCES teams(id),
    name      TEXT NOT NULL,
    expire_at TIMESTAMPTZ NOT NULL,
    doc       JSONB NOT NULL
);
CREATE INDEX staged_files_expire_at ON staged_files (expire_at);

CREATE TABLE command_rules (
    id       UUID PRIMARY KEY,
    team_id  UUID REFERENCES teams(id),
    built_in BOOLEAN NOT NULL,
    doc      JSONB NOT NULL
);

CREATE TABLE path_rules (
    id       UUID PRIMARY KEY,
    team_id  UUID REFERENCES teams(id),
    built_in BOOLEAN NOT NULL,
    doc      JSONB NOT NULL
);

CREATE TABLE cron_jobs (
    id           UUID PRIMARY KEY,
    team_id      UUID NOT NULL REFERENCES teams(id),
    name         TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    next_fire_at TIMESTAMPTZ,
    last_fire_at TIMESTAMPTZ,
    doc          JSONB NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX cron_jobs_due ON cron_jobs (enabled, next_fire_at);

CREATE TABLE cron_occurrences (
    cron_job_id UUID NOT NULL REFERENCES cron_jobs(id) ON DELETE CASCADE,
    fire_at     TIMESTAMPTZ NOT NULL,
    node        TEXT NOT NULL,
    PRIMARY KEY (cron_job_id, fire_at)
);

CREATE TABLE executions (
    id                  UUID PRIMARY KEY,
    team_id             UUID NOT NULL REFERENCES teams(id),
    name                TEXT NOT NULL,
    job_type            TEXT NOT NULL,
    trigger_source      TEXT NOT NULL,
    executor            JSONB NOT NULL,
    task                JSONB NOT NULL,
    timeout_secs        BIGINT NOT NULL,
    status              TEXT NOT NULL,
    n_total             BIGINT NOT NULL,
    n_pending           BIGINT NOT NULL,
    n_running           BIGINT NOT NULL,
    n_success           BIGINT NOT NULL,
    n_failed            BIGINT NOT NULL,
    n_timeout           BIGINT NOT NULL,
    n_cancelled         BIGINT NOT NULL,
    callback_url        TEXT,
    re_executed_from    UUID,
    cron_job_id         UUID,
    confirmation        JSONB,
    created_at          TIMESTAMPTZ NOT NULL,
    started_at          TIMESTAMPTZ,
    finished_at         TIMESTAMPTZ,
    cancel_requested_at TIMESTAMPTZ,
    lease_owner         TEXT,
    lease_expires_at    TIMESTAMPTZ
);
-- The dashboard's aggregates read these indexes alone.
CREATE INDEX executions_created_at ON executions (created_at) INCLUDE (status, job_type, started_at, finished_at);
CREATE INDEX executions_team_created_at ON executions (team_id, created_at) INCLUDE (status, job_type, started_at, finished_at);
-- Claims: pending executions nobody claimed yet, and leases that expired (or were released).
CREATE INDEX executions_unclaimed ON executions (id)
    WHERE status = 'pending' AND lease_expires_at IS NULL;
CREATE INDEX executions_leases ON executions (lease_expires_at)
    WHERE status IN ('pending', 'running', 'cancelling');

CREATE TABLE host_runs (
    execution_id     UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    idx              BIGINT NOT NULL,
    target_id        UUID NOT NULL,
    target_name      TEXT NOT NULL,
    address          TEXT NOT NULL,
    os               TEXT NOT NULL,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    exit_code        BIGINT,
    error            TEXT,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    stdout_bytes     BIGINT NOT NULL DEFAULT 0,
    stderr_bytes     BIGINT NOT NULL DEFAULT 0,
    stored_bytes     BIGINT NOT NULL DEFAULT 0,
    next_seq         BIGINT NOT NULL DEFAULT 0,
    output_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (execution_id, idx)
);

CREATE TABLE output_chunks (
    execution_id UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    host_idx     BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    stream       TEXT NOT NULL,
    data         BYTEA NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (execution_id, host_idx, seq)
);

CREATE TABLE outbox (
    delivery_id     UUID PRIMARY KEY,
    team_id         UUID NOT NULL REFERENCES teams(id),
    execution_id    UUID REFERENCES executions(id),
    kind            JSONB NOT NULL,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_execution ON outbox (execution_id);
