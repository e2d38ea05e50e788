-- The job platform's schema for SQLite. Ids are UUIDs stored as 16-byte blobs; instants are
-- microseconds since the Unix epoch (UTC); `doc` columns hold the whole object as JSON text,
-- with the columns queries need copied out of it.

CREATE TABLE teams (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id BLOB NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    team_id      BLOB NOT NULL REFERENCES teams(id),
    created_by   BLOB NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE credentials (
    id         BLOB PRIMARY KEY,
    team_id    BLOB NOT NULL REFERENCES teams(id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE targets (
    id            BLOB PRIMARY KEY,
    team_id       BLOB NOT NULL REFERENCES teams(id),
    name          TEXT NOT NULL,
    address       TEXT NOT NULL,
    credential_id BLOB REFERENCES credentials(id),
    doc           TEXT NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX targets_team_address ON targets (team_id, address);

CREATE TABLE target_groups (
    id      BLOB PRIMARY KEY,
    team_id BLOB NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     TEXT NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE scripts (
    id      BLOB PRIMARY KEY,
    team_id BLOB NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     TEXT NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE script_versions (
    id        BLOB PRIMARY KEY,
    script_id BLOB NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    status    TEXT NOT NULL,
    doc       TEXT NOT NULL,
    UNIQUE (script_id, version)
);

CREATE TABLE playbooks (
    id      BLOB PRIMARY KEY,
    team_id BLOB NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     TEXT NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE playbook_versions (
    id          BLOB PRIMARY KEY,
    playbook_id BLOB NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    UNIQUE (playbook_id, version)
);

CREATE TABLE staged_files (
    id        BLOB PRIMARY KEY,
    team_id   BLOB NOT NULL REFERENCES teams(id),
    name      TEXT NOT NULL,
    expire_at INTEGER NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX staged_files_expire_at ON staged_files (expire_at);

CREATE TABLE command_rules (
    id       BLOB PRIMARY KEY,
    team_id  BLOB REFERENCES teams(id),
    built_in INTEGER NOT NULL,
    doc      TEXT NOT NULL
);

CREATE TABLE path_rules (
    id       BLOB PRIMARY KEY,
    team_id  BLOB REFERENCES teams(id),
    built_in INTEGER NOT NULL,
    doc      TEXT NOT NULL
);

CREATE TABLE cron_jobs (
    id           BLOB PRIMARY KEY,
    team_id      BLOB NOT NULL REFERENCES teams(id),
    name         TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    next_fire_at INTEGER,
    last_fire_at INTEGER,
    doc          TEXT NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX cron_jobs_due ON cron_jobs (enabled, next_fire_at);

CREATE TABLE cron_occurrences (
    cron_job_id BLOB NOT NULL REFERENCES cron_jobs(id) ON DELETE CASCADE,
    fire_at     INTEGER NOT NULL,
    node        TEXT NOT NULL,
    PRIMARY KEY (cron_job_id, fire_at)
);

CREATE TABLE executions (
    id                  BLOB PRIMARY KEY,
    team_id             BLOB NOT NULL REFERENCES teams(id),
    name                TEXT NOT NULL,
    job_type            TEXT NOT NULL,
    trigger_source      TEXT NOT NULL,
    executor            TEXT NOT NULL,
    task                TEXT NOT NULL,
    timeout_secs        INTEGER NOT NULL,
    status              TEXT NOT NULL,
    n_total             INTEGER NOT NULL,
    n_pending           INTEGER NOT NULL,
    n_running           INTEGER NOT NULL,
    n_success           INTEGER NOT NULL,
    n_failed            INTEGER NOT NULL,
    n_timeout           INTEGER NOT NULL,
    n_cancelled         INTEGER NOT NULL,
    callback_url        TEXT,
    re_executed_from    BLOB,
    cron_job_id         BLOB,
    confirmation        TEXT,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    cancel_requested_at INTEGER,
    lease_owner         TEXT,
    lease_expires_at    INTEGER
);
-- The dashboard's aggregates read these indexes alone.
CREATE INDEX executions_created_at ON executions (created_at, status, job_type, started_at, finished_at);
CREATE INDEX executions_team_created_at ON executions (team_id, created_at, status, job_type, started_at, finished_at);
-- Claims: pending executions nobody claimed yet, and leases that expired (or were released).
CREATE INDEX executions_unclaimed ON executions (id)
    WHERE status = 'pending' AND lease_expires_at IS NULL;
CREATE INDEX executions_leases ON executions (lease_expires_at)
    WHERE status IN ('pending', 'running', 'cancelling');

CREATE TABLE host_runs (
    execution_id     BLOB NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    idx              INTEGER NOT NULL,
    target_id        BLOB NOT NULL,
    target_name      TEXT NOT NULL,
    address          TEXT NOT NULL,
    os               TEXT NOT NULL,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    exit_code        INTEGER,
    error            TEXT,
    started_at       INTEGER,
    finished_at      INTEGER,
    stdout_bytes     INTEGER NOT NULL DEFAULT 0,
    stderr_bytes     INTEGER NOT NULL DEFAULT 0,
    stored_bytes     INTEGER NOT NULL DEFAULT 0,
    next_seq         INTEGER NOT NULL DEFAULT 0,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, idx)
);

CREATE TABLE output_chunks (
    execution_id BLOB NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    host_idx     INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    stream       TEXT NOT NULL,
    data         BLOB NOT NULL,
    ts           INTEGER NOT NULL,
    PRIMARY KEY (execution_id, host_idx, seq)
);

CREATE TABLE outbox (
    delivery_id     BLOB PRIMARY KEY,
    team_id         BLOB NOT NULL REFERENCES teams(id),
    execution_id    BLOB REFERENCES executions(id),
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_execution ON outbox (execution_id);
