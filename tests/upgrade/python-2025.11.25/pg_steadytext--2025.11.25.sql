-- A stand-in for the Python extension's install script (pg_steadytext 2025.11.25), built from
-- the schema facts in shared/reference/pg_steadytext_api.md: its tables, view, indexes,
-- constraints, default rows, grants and a sample of its functions with their signatures,
-- languages and attributes. Function bodies are placeholders: an upgrade sees only the catalog.
-- Used by tests/upgrade/run.sh only; never installed by a package.

CREATE TABLE steadytext_cache (
    id SERIAL PRIMARY KEY,
    cache_key TEXT UNIQUE NOT NULL,
    prompt TEXT NOT NULL,
    response TEXT,
    embedding vector(1024),
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
    generation_time_ms INT
);
CREATE INDEX idx_steadytext_cache_key ON steadytext_cache (cache_key);
CREATE INDEX idx_steadytext_cache_last_accessed ON steadytext_cache (last_accessed);
CREATE INDEX idx_steadytext_cache_access_count ON steadytext_cache (access_count);
COMMENT ON TABLE steadytext_cache IS 'write-once cache with age-based eviction (FIFO) as of v1.4.1';

CREATE VIEW steadytext_cache_with_frecency AS
SELECT *, EXTRACT(EPOCH FROM now() - created_at) / 86400.0 AS frecency_score FROM steadytext_cache;

CREATE TABLE steadytext_queue (
    id SERIAL PRIMARY KEY,
    request_id UUID DEFAULT gen_random_uuid(),
    request_type TEXT CHECK (request_type IN ('generate', 'embed', 'batch_embed', 'rerank', 'batch_rerank')),
    prompt TEXT,
    prompts TEXT[],
    params JSONB,
    priority INT DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    user_id TEXT,
    session_id TEXT,
    status TEXT DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    result TEXT,
    results TEXT[],
    embedding vector(1024),
    embeddings vector(1024)[],
    error TEXT,
    created_at TIMESTAMPTZ DEFAULT now(),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    processing_time_ms INT,
    retry_count INT DEFAULT 0,
    max_retries INT DEFAULT 3,
    daemon_endpoint TEXT
);
CREATE INDEX idx_steadytext_queue_status_priority_created ON steadytext_queue (status, priority DESC, created_at);
CREATE INDEX idx_steadytext_queue_request_id ON steadytext_queue (request_id);
CREATE INDEX idx_steadytext_queue_user_created ON steadytext_queue (user_id, created_at DESC);
CREATE INDEX idx_steadytext_queue_session ON steadytext_queue (session_id);

CREATE TABLE steadytext_config (
    key TEXT PRIMARY KEY,
    value JSONB NOT NULL,
    description TEXT,
    updated_at TIMESTAMPTZ DEFAULT now(),
    updated_by TEXT DEFAULT current_user
);
INSERT INTO steadytext_config (key, value, description) VALUES
    ('daemon_host', '"localhost"', 'SteadyText daemon host'),
    ('daemon_port', '5555', 'SteadyText daemon port'),
    ('daemon_auto_start', 'true', 'Auto-start daemon if not running'),
    ('default_max_tokens', '512', 'Default max tokens for generation'),
    ('default_seed', '42', 'Default seed'),
    ('cache_enabled', 'false', 'Enable caching'),
    ('cache_eviction_enabled', 'true', 'Enable cache eviction'),
    ('cache_max_entries', '10000', 'Maximum cache entries'),
    ('cache_max_size_mb', '100', 'Maximum cache size in MB');

CREATE TABLE steadytext_daemon_health (
    daemon_id TEXT PRIMARY KEY DEFAULT 'default',
    endpoint TEXT NOT NULL,
    last_heartbeat TIMESTAMPTZ DEFAULT now(),
    uptime_seconds INT DEFAULT 0,
    status TEXT DEFAULT 'unknown' CHECK (status IN ('healthy', 'unhealthy', 'starting', 'stopping', 'unknown')),
    version TEXT,
    models_loaded TEXT[],
    memory_usage_mb INT,
    active_connections INT DEFAULT 0,
    total_requests BIGINT DEFAULT 0,
    error_count INT DEFAULT 0,
    avg_response_time_ms INT
);
INSERT INTO steadytext_daemon_health (daemon_id, endpoint, status, uptime_seconds)
VALUES ('default', 'tcp://localhost:5555', 'unknown', 0);

CREATE TABLE steadytext_rate_limits (
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

CREATE TABLE steadytext_audit_log (
    id SERIAL PRIMARY KEY,
    event_id UUID DEFAULT gen_random_uuid(),
    event_type TEXT NOT NULL,
    user_id TEXT DEFAULT current_user,
    request_id UUID,
    details JSONB,
    created_at TIMESTAMPTZ DEFAULT now(),
    ip_address INET,
    success BOOLEAN DEFAULT true,
    error_message TEXT
);
CREATE INDEX idx_steadytext_audit_log_created ON steadytext_audit_log (created_at DESC);
CREATE INDEX idx_steadytext_audit_log_user ON steadytext_audit_log (user_id, created_at DESC);

-- A sample of the functions: each language (PL/Python, plpgsql, SQL), LEAKPROOF, STRICT,
-- TABLE results, the aggregates and their support functions, the st_* aliases.
CREATE FUNCTION _steadytext_init_python() RETURNS void LANGUAGE plpython3u AS $$ GD['steadytext_initialized'] = True $$;
CREATE FUNCTION _steadytext_raise_p0001(message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = message; END $$;
CREATE FUNCTION steadytext_generate(prompt text, max_tokens int DEFAULT NULL, use_cache bool DEFAULT true, seed int DEFAULT 42, eos_string text DEFAULT '[EOS]', model text DEFAULT NULL, model_repo text DEFAULT NULL, model_filename text DEFAULT NULL, size text DEFAULT NULL, unsafe_mode bool DEFAULT false)
RETURNS text LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return None $$;
CREATE FUNCTION steadytext_generate_cached(prompt text, max_tokens int DEFAULT NULL, seed int DEFAULT 42)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN NULL; END $$;
CREATE FUNCTION steadytext_generate_json(prompt text, schema jsonb, max_tokens int DEFAULT NULL, use_cache bool DEFAULT true, seed int DEFAULT 42, unsafe_mode bool DEFAULT false, model text DEFAULT NULL)
RETURNS text LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return None $$;
CREATE FUNCTION steadytext_embed(text_input text, use_cache bool DEFAULT true, seed int DEFAULT 42, model text DEFAULT NULL, unsafe_mode bool DEFAULT false)
RETURNS vector(1024) LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE LEAKPROOF AS $$ return None $$;
CREATE FUNCTION steadytext_rerank(query text, documents text[], task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query', return_scores bool DEFAULT true, seed int DEFAULT 42)
RETURNS TABLE(document text, score float8) LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return [] $$;
CREATE FUNCTION steadytext_generate_async(prompt text, max_tokens int DEFAULT 512)
RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN NULL; END $$;
CREATE FUNCTION steadytext_check_async(request_id uuid)
RETURNS TABLE(status text, result text, results text[], embedding vector, embeddings vector[], error text, created_at timestamptz, completed_at timestamptz, processing_time_ms int, request_type text)
LANGUAGE sql STABLE PARALLEL SAFE LEAKPROOF AS $$
    SELECT q.status, q.result, q.results, q.embedding, q.embeddings, q.error, q.created_at, q.completed_at, q.processing_time_ms, q.request_type
    FROM steadytext_queue q WHERE q.request_id = $1 $$;
CREATE FUNCTION steadytext_cache_stats()
RETURNS TABLE(total_entries bigint, total_size_mb float8, cache_hit_rate float8, avg_access_count float8, oldest_entry timestamptz, newest_entry timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT count(*), 0::float8, 0::float8, 0::float8, min(created_at), max(created_at) FROM steadytext_cache $$;
CREATE FUNCTION steadytext_daemon_status()
RETURNS TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamptz, uptime_seconds int) LANGUAGE plpython3u VOLATILE AS $$ return [] $$;
CREATE FUNCTION steadytext_config_set(config_key text, config_value text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL SAFE STRICT AS $$
BEGIN
    INSERT INTO steadytext_config (key, value, updated_at, updated_by) VALUES (config_key, to_jsonb(config_value), now(), current_user)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = current_user;
    INSERT INTO steadytext_audit_log (event_type, details) VALUES ('config_change', jsonb_build_object('key', config_key, 'value', config_value));
END $$;
CREATE FUNCTION steadytext_config_get(config_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE STRICT AS $$ SELECT value #>> '{}' FROM steadytext_config WHERE key = config_key $$;
CREATE FUNCTION steadytext_summarize_accumulate(state jsonb, value text, metadata jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return state $$;
CREATE FUNCTION steadytext_summarize_combine(state1 jsonb, state2 jsonb)
RETURNS jsonb LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return state1 $$;
CREATE FUNCTION steadytext_summarize_finalize(state jsonb)
RETURNS text LANGUAGE plpython3u IMMUTABLE PARALLEL SAFE AS $$ return 'No data to summarize' $$;
CREATE FUNCTION steadytext_summarize_combine_states(state1 jsonb, partial_state jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$ BEGIN RETURN steadytext_summarize_combine(state1, partial_state); END $$;
CREATE AGGREGATE steadytext_summarize(text, jsonb) (
    SFUNC = steadytext_summarize_accumulate, STYPE = jsonb, FINALFUNC = steadytext_summarize_finalize,
    COMBINEFUNC = steadytext_summarize_combine, PARALLEL = SAFE);
CREATE AGGREGATE steadytext_summarize_partial(text, jsonb) (
    SFUNC = steadytext_summarize_accumulate, STYPE = jsonb, COMBINEFUNC = steadytext_summarize_combine, PARALLEL = SAFE);
CREATE AGGREGATE steadytext_summarize_final(jsonb) (
    SFUNC = steadytext_summarize_combine_states, STYPE = jsonb, FINALFUNC = steadytext_summarize_finalize, PARALLEL = SAFE);
CREATE FUNCTION st_generate(prompt text, max_tokens int DEFAULT NULL, use_cache bool DEFAULT true, seed int DEFAULT 42)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT steadytext_generate(prompt, max_tokens, use_cache, seed) $$;

GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO PUBLIC;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;

-- The prompt registry (2025.9.6), created after the grants as in the original.
CREATE TABLE steadytext_prompts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    slug TEXT UNIQUE NOT NULL CHECK (slug ~ '^[a-z0-9]+(?:-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 100),
    description TEXT CHECK (length(description) <= 500),
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by TEXT DEFAULT current_user,
    updated_at TIMESTAMPTZ DEFAULT now(),
    updated_by TEXT DEFAULT current_user
);
CREATE INDEX idx_steadytext_prompts_slug ON steadytext_prompts (slug);
CREATE INDEX idx_steadytext_prompts_created_at ON steadytext_prompts (created_at DESC);
CREATE TABLE steadytext_prompt_versions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    prompt_id UUID NOT NULL REFERENCES steadytext_prompts (id) ON DELETE CASCADE,
    version INT NOT NULL CHECK (version > 0),
    template TEXT NOT NULL CHECK (length(template) > 0),
    required_variables TEXT[],
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT now(),
    created_by TEXT DEFAULT current_user,
    is_active BOOLEAN DEFAULT false,
    UNIQUE (prompt_id, version)
);
CREATE INDEX idx_steadytext_prompt_versions_active ON steadytext_prompt_versions (prompt_id, is_active) WHERE is_active;
CREATE INDEX idx_steadytext_prompt_versions_created_at ON steadytext_prompt_versions (created_at DESC);
CREATE FUNCTION _get_next_version(p_prompt_id uuid) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(max(version), 0) + 1 FROM steadytext_prompt_versions WHERE prompt_id = p_prompt_id $$;
CREATE FUNCTION _validate_jinja2_template(template text)
RETURNS TABLE(is_valid bool, required_variables text[], error_message text) LANGUAGE plpython3u VOLATILE AS $$ return [(True, [], None)] $$;
CREATE FUNCTION steadytext_prompt_render(slug text, variables jsonb, version int DEFAULT NULL, strict bool DEFAULT true)
RETURNS text LANGUAGE plpython3u VOLATILE AS $$ return None $$;
