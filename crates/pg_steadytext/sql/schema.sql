-- pg_steadytext schema: the roles, the tables, the view and the default configuration.
-- Layouts follow the Python extension (2025.11.25) so existing SQL keeps working; additions are
-- marked "new". Privileges are granted at the end of functions.sql; no table has any PUBLIC
-- privilege.

-- While this file runs, names resolve in pg_catalog alone (docs/security.md, "Install and
-- upgrade scripts"): the extension's own objects are written @extschema@.name, so no object a
-- role created in a schema it may write to can be bound into a view, default or policy, or run
-- by this script as the installing superuser. The path is set back at the end of the file for the
-- function declarations pgrx writes between the files.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- pgvector's types and operators are named @extschema@.vector in these files, so pgvector must be
-- installed in this extension's schema (PostgreSQL 15 has no @extschema:vector@).
DO $vector$
BEGIN
    IF (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')
       OPERATOR(pg_catalog.<>) '@extschema@'::pg_catalog.regnamespace THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'pg_steadytext needs pgvector in schema @extschema@',
            HINT = 'ALTER EXTENSION vector SET SCHEMA @extschema@';
    END IF;
END
$vector$;

-- The roles of the privilege model (cluster-wide, created once, kept when the extension is
-- dropped). steadytext_worker has LOGIN because PostgreSQL 15 lets background workers connect
-- only as login roles; it has no password, so password authentication never admits it.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'steadytext_user') THEN
        CREATE ROLE steadytext_user NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'steadytext_admin') THEN
        CREATE ROLE steadytext_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'steadytext_worker') THEN
        CREATE ROLE steadytext_worker LOGIN;
    END IF;
    GRANT steadytext_user TO steadytext_admin;
END
$roles$;

-- The cache (L2). Generation and structured rows fill `response`, embedding rows `embedding`.
-- `cache_key` is a digest of everything that changes the output (see src/cache_key.rs); the
-- other columns keep their meaning and describe the row.
CREATE TABLE @extschema@.steadytext_cache (
    id SERIAL PRIMARY KEY,
    cache_key TEXT UNIQUE NOT NULL,
    prompt TEXT NOT NULL,
    response TEXT,
    embedding @extschema@.vector(1024),
    access_count INT DEFAULT 1,
    last_accessed TIMESTAMPTZ DEFAULT now(),
    created_at TIMESTAMPTZ DEFAULT now(),
    steadytext_cache_hit BOOLEAN DEFAULT false,
    model_name TEXT NOT NULL DEFAULT 'qwen3-1.7b',
    model_size TEXT CHECK (model_size IN ('small', 'medium', 'large')),
    seed INT DEFAULT 42,
    eos_string TEXT,
    generation_params JSONB,
    response_size INT,
    generation_time_ms INT,
    -- new: the login role that caused the row (row-level security shows a role its own rows)
    created_by TEXT NOT NULL DEFAULT session_user
);
CREATE INDEX idx_steadytext_cache_key ON @extschema@.steadytext_cache (cache_key);
CREATE INDEX idx_steadytext_cache_last_accessed ON @extschema@.steadytext_cache (last_accessed);
CREATE INDEX idx_steadytext_cache_access_count ON @extschema@.steadytext_cache (access_count);
CREATE INDEX idx_steadytext_cache_created_at ON @extschema@.steadytext_cache (created_at);
-- new: serves steadytext_semantic_search
CREATE INDEX idx_steadytext_cache_embedding_hnsw ON @extschema@.steadytext_cache
    USING hnsw (embedding @extschema@.vector_cosine_ops);
COMMENT ON TABLE @extschema@.steadytext_cache IS
    'pg_steadytext cache: written by the _cached functions and the queue workers, read by every function called with use_cache; keys cover everything that changes the output';
-- A role sees the rows its sessions caused (rows belong to the login role, session_user, which
-- SET ROLE does not change); steadytext_admin sees all. Exact-key hits go through the
-- extension's functions and are shared.
ALTER TABLE @extschema@.steadytext_cache ENABLE ROW LEVEL SECURITY;
CREATE POLICY steadytext_cache_own ON @extschema@.steadytext_cache FOR SELECT
    USING (created_by = session_user OR pg_catalog.pg_has_role('steadytext_admin', 'USAGE'));
CREATE POLICY steadytext_cache_admin ON @extschema@.steadytext_cache FOR DELETE
    USING (pg_catalog.pg_has_role('steadytext_admin', 'USAGE'));

-- new: lookups counted for a real hit rate in steadytext_cache_stats(). One row per lookup of a
-- VOLATILE `_cached` function (no row is updated, so concurrent callers never wait on each
-- other); steadytext_cache_scheduled_eviction and steadytext_cache_clear fold them into one.
CREATE TABLE @extschema@.steadytext_cache_lookups (
    id BIGSERIAL PRIMARY KEY,
    hits BIGINT NOT NULL DEFAULT 0,
    misses BIGINT NOT NULL DEFAULT 0,
    since TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Frecency: access count weighted by recency, the same score the daemon's cache evicts by:
-- access_count / (1 + seconds since the last access). Higher is more worth keeping.
CREATE VIEW @extschema@.steadytext_cache_with_frecency AS
SELECT c.*,
       c.access_count::float8
           / (1::float8 + EXTRACT(EPOCH FROM (now() - COALESCE(c.last_accessed, c.created_at)))::float8)
           AS frecency_score
FROM @extschema@.steadytext_cache c;
COMMENT ON VIEW @extschema@.steadytext_cache_with_frecency IS
    'steadytext_cache with frecency_score = access_count / (1 + seconds since last access); eviction removes the lowest scores first';

-- The async queue (served by the queue workers).
CREATE TABLE @extschema@.steadytext_queue (
    id SERIAL PRIMARY KEY,
    request_id UUID DEFAULT gen_random_uuid(),
    request_type TEXT CHECK (request_type IN (
        'generate', 'embed', 'batch_embed', 'rerank', 'batch_rerank',
        'generate_json', 'generate_regex', 'generate_choice', 'generate_grammar')),
    prompt TEXT,
    prompts TEXT[],
    params JSONB,
    priority INT DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    user_id TEXT,
    session_id TEXT,
    status TEXT DEFAULT 'pending' CHECK (status IN (
        'pending', 'processing', 'completed', 'failed', 'cancelled')),
    result TEXT,
    results TEXT[],
    embedding @extschema@.vector(1024),
    embeddings @extschema@.vector(1024)[],
    error TEXT,
    created_at TIMESTAMPTZ DEFAULT now(),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    processing_time_ms INT,
    retry_count INT DEFAULT 0,
    max_retries INT DEFAULT 3,
    daemon_endpoint TEXT,
    -- Added for the claim protocol (sql/queue.sql); the Python extension's columns are unchanged.
    worker_id TEXT,
    lease_until TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ DEFAULT now(),
    wait_time_ms INT,
    -- The backend that claimed the row: only that connection may renew, complete, fail or give
    -- it back (a worker's name is only text).
    claimed_by_pid INT
);
CREATE INDEX idx_steadytext_queue_status_priority_created
    ON @extschema@.steadytext_queue (status, priority DESC, created_at);
CREATE INDEX idx_steadytext_queue_request_id ON @extschema@.steadytext_queue (request_id);
CREATE INDEX idx_steadytext_queue_user_created ON @extschema@.steadytext_queue (user_id, created_at DESC);
CREATE INDEX idx_steadytext_queue_session ON @extschema@.steadytext_queue (session_id);
CREATE INDEX idx_steadytext_queue_runnable
    ON @extschema@.steadytext_queue (priority DESC, created_at, id) WHERE status = 'pending';
CREATE INDEX idx_steadytext_queue_processing
    ON @extschema@.steadytext_queue (lease_until) WHERE status = 'processing';
-- A role sees its own requests; steadytext_admin and the workers see all. Rows are written only
-- by the extension's functions.
ALTER TABLE @extschema@.steadytext_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY steadytext_queue_own ON @extschema@.steadytext_queue FOR SELECT
    USING (user_id = session_user
           OR pg_catalog.pg_has_role('steadytext_admin', 'USAGE')
           OR pg_catalog.pg_has_role('steadytext_worker', 'USAGE'));
CREATE POLICY steadytext_queue_admin ON @extschema@.steadytext_queue FOR DELETE
    USING (pg_catalog.pg_has_role('steadytext_admin', 'USAGE'));

-- Configuration: JSONB values.
CREATE TABLE @extschema@.steadytext_config (
    key TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    description TEXT,
    updated_at TIMESTAMPTZ DEFAULT now(),
    updated_by TEXT DEFAULT session_user
);
INSERT INTO @extschema@.steadytext_config (key, value, description) VALUES
    ('daemon_host', '"localhost"', 'Informational: the endpoint is the setting steadytext.daemon_endpoint'),
    ('daemon_port', '5555', 'Informational: the endpoint is the setting steadytext.daemon_endpoint'),
    ('daemon_auto_start', 'true', 'Start the daemon on demand when it is not running'),
    ('default_max_tokens', '512', 'max_tokens when a call passes NULL'),
    ('default_seed', '42', 'seed when a call passes NULL'),
    ('cache_enabled', 'false', 'Informational only: use_cache decides per call, as in the Python extension'),
    ('cache_eviction_enabled', 'true', 'Whether steadytext_cache_scheduled_eviction() evicts'),
    ('cache_max_entries', '10000', 'Eviction target: entries'),
    ('cache_max_size_mb', '100', 'Eviction target: megabytes'),
    ('queue_lease_seconds', '60', 'How long a queue worker owns a claimed row without a heartbeat'),
    ('queue_retry_base_seconds', '1', 'Backoff before retry n is this times 2^(n-1) seconds');

CREATE TABLE @extschema@.steadytext_daemon_health (
    daemon_id TEXT PRIMARY KEY DEFAULT 'default',
    endpoint TEXT NOT NULL,
    last_heartbeat TIMESTAMPTZ DEFAULT now(),
    uptime_seconds INT DEFAULT 0,
    status TEXT DEFAULT 'unknown' CHECK (status IN (
        'healthy', 'unhealthy', 'starting', 'stopping', 'unknown')),
    version TEXT,
    models_loaded TEXT[],
    memory_usage_mb INT,
    active_connections INT DEFAULT 0,
    total_requests BIGINT DEFAULT 0,
    error_count INT DEFAULT 0,
    avg_response_time_ms INT
);
INSERT INTO @extschema@.steadytext_daemon_health (daemon_id, endpoint, status, uptime_seconds)
VALUES ('default', 'tcp://localhost:5555', 'unknown', 0);

CREATE TABLE @extschema@.steadytext_rate_limits (
    user_id TEXT PRIMARY KEY,
    requests_per_minute INT DEFAULT 60,
    requests_per_hour INT DEFAULT 1000,
    requests_per_day INT DEFAULT 10000,
    current_minute_count INT DEFAULT 0,
    current_hour_count INT DEFAULT 0,
    current_day_count INT DEFAULT 0,
    last_reset TIMESTAMPTZ DEFAULT now(),
    last_reset_minute TIMESTAMPTZ DEFAULT now(),
    last_reset_hour TIMESTAMPTZ DEFAULT now(),
    last_reset_day TIMESTAMPTZ DEFAULT now(),
    created_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE @extschema@.steadytext_audit_log (
    id SERIAL PRIMARY KEY,
    event_id UUID DEFAULT gen_random_uuid(),
    event_type TEXT NOT NULL,
    user_id TEXT DEFAULT session_user,
    request_id UUID,
    details JSONB,
    created_at TIMESTAMPTZ DEFAULT now(),
    ip_address INET,
    success BOOLEAN DEFAULT true,
    error_message TEXT
);
CREATE INDEX idx_steadytext_audit_log_created ON @extschema@.steadytext_audit_log (created_at DESC);
CREATE INDEX idx_steadytext_audit_log_user ON @extschema@.steadytext_audit_log (user_id, created_at DESC);

-- The Python extension raised its validation errors through this helper; kept for callers.
CREATE FUNCTION @extschema@._steadytext_raise_p0001(message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = message;
END;
$$;

-- A numeric setting, whether stored as a JSON number or as text. Runs as its caller, who reads
-- steadytext_config under its own privileges (steadytext_user may; PUBLIC may not).
CREATE FUNCTION @extschema@._steadytext_config_number(config_key text, fallback float8) RETURNS float8
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
BEGIN
    IF length(config_key) > 64 THEN
        RAISE EXCEPTION USING ERRCODE = '54000',
            MESSAGE = format('a config key has at most 64 characters, got %s', length(config_key));
    END IF;
    SELECT c.value #>> '{}' INTO v FROM @extschema@.steadytext_config c WHERE c.key = config_key;
    IF v ~ '^\s*-?[0-9]+(\.[0-9]+)?\s*$' THEN
        RETURN v::float8;
    END IF;
    RETURN fallback;
END;
$$;

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
