{{schema_note}}

CREATE TABLE teams (
    id          {{uuid}} PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  {{instant}} NOT NULL
);

CREATE TABLE users (
    id            {{uuid}} PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      {{bool}} NOT NULL,
    disabled      {{bool}} NOT NULL,
    created_at    {{instant}} NOT NULL
);

CREATE TABLE memberships (
    user_id {{uuid}} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id {{uuid}} NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE api_tokens (
    id           {{uuid}} PRIMARY KEY,
    name         TEXT NOT NULL,
    team_id      {{uuid}} NOT NULL REFERENCES teams(id),
    created_by   {{uuid}} NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    expires_at   {{instant}},
    revoked_at   {{instant}},
    created_at   {{instant}} NOT NULL,
    last_used_at {{instant}}
);

CREATE TABLE credentials (
    id         {{uuid}} PRIMARY KEY,
    team_id    {{uuid}} NOT NULL REFERENCES teams(id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    secret     {{bytes}} NOT NULL,
    created_at {{instant}} NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE targets (
    id            {{uuid}} PRIMARY KEY,
    team_id       {{uuid}} NOT NULL REFERENCES teams(id),
    name          TEXT NOT NULL,
    address       TEXT NOT NULL,
    credential_id {{uuid}} REFERENCES credentials(id),
    doc           {{json}} NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX targets_team_address ON targets (team_id, address);

CREATE TABLE target_groups (
    id      {{uuid}} PRIMARY KEY,
    team_id {{uuid}} NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     {{json}} NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE scripts (
    id      {{uuid}} PRIMARY KEY,
    team_id {{uuid}} NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     {{json}} NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE script_versions (
    id        {{uuid}} PRIMARY KEY,
    script_id {{uuid}} NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    version   {{int}} NOT NULL,
    status    TEXT NOT NULL,
    doc       {{json}} NOT NULL,
    UNIQUE (script_id, version)
);

CREATE TABLE playbooks (
    id      {{uuid}} PRIMARY KEY,
    team_id {{uuid}} NOT NULL REFERENCES teams(id),
    name    TEXT NOT NULL,
    doc     {{json}} NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE playbook_versions (
    id          {{uuid}} PRIMARY KEY,
    playbook_id {{uuid}} NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    version     {{int}} NOT NULL,
    doc         {{json}} NOT NULL,
    UNIQUE (playbook_id, version)
);

CREATE TABLE staged_files (
    id        {{uuid}} PRIMARY KEY,
    team_id   {{uuid}} NOT NULL REFERENCES teams(id),
    name      TEXT NOT NULL,
    expire_at {{instant}} NOT NULL,
    doc       {{json}} NOT NULL
);
CREATE INDEX staged_files_expire_at ON staged_files (expire_at);

CREATE TABLE command_rules (
    id       {{uuid}} PRIMARY KEY,
    team_id  {{uuid}} REFERENCES teams(id),
    built_in {{bool}} NOT NULL,
    doc      {{json}} NOT NULL
);

CREATE TABLE path_rules (
    id       {{uuid}} PRIMARY KEY,
    team_id  {{uuid}} REFERENCES teams(id),
    built_in {{bool}} NOT NULL,
    doc      {{json}} NOT NULL
);

CREATE TABLE cron_jobs (
    id           {{uuid}} PRIMARY KEY,
    team_id      {{uuid}} NOT NULL REFERENCES teams(id),
    name         TEXT NOT NULL,
    enabled      {{bool}} NOT NULL,
    next_fire_at {{instant}},
    last_fire_at {{instant}},
    doc          {{json}} NOT NULL,
    UNIQUE (team_id, name)
);
CREATE INDEX cron_jobs_due ON cron_jobs (enabled, next_fire_at);

CREATE TABLE cron_occurrences (
    cron_job_id {{uuid}} NOT NULL REFERENCES cron_jobs(id) ON DELETE CASCADE,
    fire_at     {{instant}} NOT NULL,
    node        TEXT NOT NULL,
    PRIMARY KEY (cron_job_id, fire_at)
);

CREATE TABLE executions (
    id                  {{uuid}} PRIMARY KEY,
    team_id             {{uuid}} NOT NULL REFERENCES teams(id),
    name                TEXT NOT NULL,
    job_type            TEXT NOT NULL,
    trigger_source      TEXT NOT NULL,
    executor            {{json}} NOT NULL,
    task                {{json}} NOT NULL,
    timeout_secs        {{int}} NOT NULL,
    status              TEXT NOT NULL,
    n_total             {{int}} NOT NULL,
    n_pending           {{int}} NOT NULL,
    n_running           {{int}} NOT NULL,
    n_success           {{int}} NOT NULL,
    n_failed            {{int}} NOT NULL,
    n_timeout           {{int}} NOT NULL,
    n_cancelled         {{int}} NOT NULL,
    callback_url        TEXT,
    re_executed_from    {{uuid}},
    cron_job_id         {{uuid}},
    confirmation        {{json}},
    created_at          {{instant}} NOT NULL,
    started_at          {{instant}},
    finished_at         {{instant}},
    cancel_requested_at {{instant}},
    lease_owner         TEXT,
    lease_expires_at    {{instant}}
);
-- The dashboard's aggregates read these indexes alone.
CREATE INDEX executions_created_at ON executions (created_at{{covering}}status, job_type, started_at, finished_at);
CREATE INDEX executions_team_created_at ON executions (team_id, created_at{{covering}}status, job_type, started_at, finished_at);
-- Claims: pending executions nobody claimed yet, and leases that expired (or were released).
CREATE INDEX executions_unclaimed ON executions (id)
    WHERE status = 'pending' AND lease_expires_at IS NULL;
CREATE INDEX executions_leases ON executions (lease_expires_at)
    WHERE status IN ('pending', 'running', 'cancelling');

CREATE TABLE host_runs (
    execution_id     {{uuid}} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    idx              {{int}} NOT NULL,
    target_id        {{uuid}} NOT NULL,
    target_name      TEXT NOT NULL,
    address          TEXT NOT NULL,
    os               TEXT NOT NULL,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    exit_code        {{int}},
    error            TEXT,
    started_at       {{instant}},
    finished_at      {{instant}},
    stdout_bytes     {{int}} NOT NULL DEFAULT 0,
    stderr_bytes     {{int}} NOT NULL DEFAULT 0,
    stored_bytes     {{int}} NOT NULL DEFAULT 0,
    next_seq         {{int}} NOT NULL DEFAULT 0,
    output_truncated {{bool}} NOT NULL DEFAULT {{false}},
    PRIMARY KEY (execution_id, idx)
);

CREATE TABLE output_chunks (
    execution_id {{uuid}} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    host_idx     {{int}} NOT NULL,
    seq          {{int}} NOT NULL,
    stream       TEXT NOT NULL,
    data         {{bytes}} NOT NULL,
    ts           {{instant}} NOT NULL,
    PRIMARY KEY (execution_id, host_idx, seq)
);

CREATE TABLE outbox (
    delivery_id     {{uuid}} PRIMARY KEY,
    team_id         {{uuid}} NOT NULL REFERENCES teams(id),
    execution_id    {{uuid}} REFERENCES executions(id),
    kind            {{json}} NOT NULL,
    payload         {{json}} NOT NULL,
    state           TEXT NOT NULL,
    attempts        {{int}} NOT NULL,
    next_attempt_at {{instant}} NOT NULL,
    last_error      TEXT,
    created_at      {{instant}} NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_execution ON outbox (execution_id);
