-- pg_steadytext 2026.12.1 -> 2026.12.7 (tests/upgrade/run.sh compares the result with a fresh
-- install of 2026.12.7).

-- Names resolve in pg_catalog alone while this script runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- The frecency score in float8 arithmetic throughout: `float8 / numeric` had no exact match in
-- pg_catalog, so an install bound whatever `public./(float8, numeric)` a role had created.
CREATE OR REPLACE VIEW @extschema@.steadytext_cache_with_frecency WITH (security_invoker = true) AS
SELECT c.*,
       c.access_count::float8
           / (1::float8 + EXTRACT(EPOCH FROM (now() - COALESCE(c.last_accessed, c.created_at)))::float8)
           AS frecency_score
FROM @extschema@.steadytext_cache c;

-- Rows belong to the session's login role, which SET ROLE does not change (src/privilege.rs,
-- identity): a role that switched to a group role wrote rows every member of the group saw.
ALTER POLICY steadytext_cache_own ON @extschema@.steadytext_cache
    USING (created_by = session_user OR pg_catalog.pg_has_role('steadytext_admin', 'USAGE'));
ALTER POLICY steadytext_queue_own ON @extschema@.steadytext_queue
    USING (user_id = session_user
           OR pg_catalog.pg_has_role('steadytext_admin', 'USAGE')
           OR pg_catalog.pg_has_role('steadytext_worker', 'USAGE'));
ALTER TABLE @extschema@.steadytext_cache ALTER COLUMN created_by SET DEFAULT session_user;
ALTER TABLE @extschema@.steadytext_config ALTER COLUMN updated_by SET DEFAULT session_user;
ALTER TABLE @extschema@.steadytext_audit_log ALTER COLUMN user_id SET DEFAULT session_user;
ALTER TABLE @extschema@.steadytext_prompts ALTER COLUMN created_by SET DEFAULT session_user;
ALTER TABLE @extschema@.steadytext_prompts ALTER COLUMN updated_by SET DEFAULT session_user;
ALTER TABLE @extschema@.steadytext_prompt_versions ALTER COLUMN created_by SET DEFAULT session_user;

-- _steadytext_config_number runs as its caller now (it read any config value for PUBLIC).
REVOKE ALL ON FUNCTION @extschema@._steadytext_config_number(text, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._steadytext_config_number(text, float8) TO steadytext_user;

-- Functions whose checks changed: every literal argument of a call to the extension's own
-- functions is cast (a call resolves among a role's overloads in the same schema too), admission
-- checks on the internal helpers users may call, session_user for row ownership, leases on every
-- claim but a background worker's own.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_config_number(config_key text, fallback float8) RETURNS float8
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

CREATE FUNCTION @extschema@._steadytext_restoring() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT current_setting('row_security') = 'off' AND current_setting('check_function_bodies') = 'off'
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_config_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text := lower(NEW.key);
    config_value text := NEW.value #>> '{}';
    v text := btrim(NEW.value #>> '{}');
BEGIN
    IF k = 'daemon_host' AND config_value !~ '^[A-Za-z0-9._-]+$' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Invalid host format'::text);
    END IF;
    IF k = 'daemon_port' AND (config_value !~ '^[0-9]{1,5}$'
                              OR config_value::int NOT BETWEEN 1 AND 65535) THEN
        PERFORM @extschema@._steadytext_raise_p0001('Invalid port format'::text);
    END IF;
    IF k = 'model_path' AND (config_value LIKE '/%' OR config_value ~ '[;|]') THEN
        PERFORM @extschema@._steadytext_raise_p0001('Invalid file path'::text);
    END IF;
    IF k = 'daemon_command' AND config_value ~ '[;&|[:space:]]' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Invalid command format'::text);
    END IF;
    IF k LIKE '%table_name' AND config_value !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Invalid table name'::text);
    END IF;
    IF k IN ('default_max_tokens', 'default_seed', 'cache_max_entries', 'queue_lease_seconds')
       AND (v !~ '^[0-9]{1,9}$'
            OR (k = 'default_max_tokens' AND v::int < 1)
            OR (k = 'queue_lease_seconds' AND v::int NOT BETWEEN 3 AND 86400)) THEN
        PERFORM @extschema@._steadytext_raise_p0001(format(
            '%s must be a whole number%s, got %L', k,
            CASE k WHEN 'default_max_tokens' THEN ' of at least 1'
                   WHEN 'queue_lease_seconds' THEN ' from 3 to 86400'
                   ELSE ' of at least 0' END,
            config_value));
    END IF;
    IF k IN ('cache_max_size_mb', 'queue_retry_base_seconds')
       AND v !~ '^[0-9]{1,9}(\.[0-9]+)?$' THEN
        PERFORM @extschema@._steadytext_raise_p0001(format(
            '%s must be a number of at least 0, got %L', k, config_value));
    END IF;
    IF k IN ('daemon_auto_start', 'cache_enabled', 'cache_eviction_enabled')
       AND lower(v) NOT IN ('true', 'false', 't', 'f', '1', '0', 'yes', 'no', 'on', 'off') THEN
        PERFORM @extschema@._steadytext_raise_p0001(format(
            '%s must be true or false, got %L', k, config_value));
    END IF;
    -- A restore keeps when and by whom a value was set (see _steadytext_restoring).
    IF NOT @extschema@._steadytext_restoring() THEN
        NEW.updated_at := now();
        NEW.updated_by := session_user;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_config_audit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- A restored value was audited when it was set; the restored audit log has that event.
    IF @extschema@._steadytext_restoring() THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' AND lower(NEW.key) IN ('daemon_host', 'daemon_port') THEN
        RAISE NOTICE '% is recorded but does not move the daemon: its endpoint is the setting steadytext.daemon_endpoint (superuser)', lower(NEW.key);
    END IF;
    -- key and value as the Python extension recorded them, then what it did not record
    PERFORM @extschema@._steadytext_audit('config_change'::text, jsonb_build_object(
        'key', CASE TG_OP WHEN 'DELETE' THEN OLD.key ELSE NEW.key END,
        'value', CASE WHEN TG_OP <> 'DELETE' THEN NEW.value #>> '{}' END,
        'operation', lower(TG_OP),
        'old_value', CASE WHEN TG_OP <> 'INSERT' THEN OLD.value #>> '{}' END));
    RETURN NULL;
END;
$$;

CREATE FUNCTION @extschema@._steadytext_config_restore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF @extschema@._steadytext_restoring()
       AND EXISTS (SELECT 1 FROM @extschema@.steadytext_config c WHERE c.key = NEW.key) THEN
        UPDATE @extschema@.steadytext_config c
        SET value = NEW.value, description = NEW.description,
            updated_at = NEW.updated_at, updated_by = NEW.updated_by
        WHERE c.key = NEW.key;
        RETURN NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_config_set(config_key text, config_value text) RETURNS void
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO @extschema@.steadytext_config (key, value, updated_at, updated_by)
    VALUES (config_key, to_jsonb(config_value), now(), session_user)
    ON CONFLICT (key) DO UPDATE
        SET value = EXCLUDED.value, updated_at = now(), updated_by = session_user;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_cache_evict(
    target_entries int, target_size_mb float8, batch_size int, min_age_hours int,
    min_access_count int, order_by text, eviction_type text)
RETURNS TABLE(evicted_count int, freed_size_mb float8, remaining_entries bigint,
              remaining_size_mb float8)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_entries bigint := COALESCE(target_entries,
        @extschema@._steadytext_config_number('cache_max_entries'::text, 10000::float8)::bigint);
    max_mb float8 := COALESCE(target_size_mb,
        @extschema@._steadytext_config_number('cache_max_size_mb'::text, 100::float8));
    entries bigint;
    size_mb float8;
    batch_count int;
    batch_mb float8;
    batch_limit bigint;
BEGIN
    IF COALESCE(batch_size, 0) < 1 THEN
        PERFORM @extschema@._steadytext_raise_p0001('batch_size must be at least 1'::text);
    END IF;
    evicted_count := 0;
    freed_size_mb := 0;
    LOOP
        SELECT count(*), COALESCE(sum(@extschema@._steadytext_cache_row_size(c)), 0) / 1048576.0
          INTO entries, size_mb FROM @extschema@.steadytext_cache c;
        EXIT WHEN entries <= max_entries AND size_mb <= max_mb;
        batch_limit := CASE WHEN size_mb <= max_mb THEN LEAST(batch_size, entries - max_entries)
                            ELSE batch_size END;
        EXECUTE format(
            'WITH victims AS (
                 SELECT id FROM @extschema@.steadytext_cache_with_frecency
                 WHERE created_at < now() - make_interval(hours => $1)
                   AND ($2 IS NULL OR access_count < $2)
                 ORDER BY %s LIMIT $3),
             deleted AS (
                 DELETE FROM @extschema@.steadytext_cache c USING victims v WHERE c.id = v.id
                 RETURNING @extschema@._steadytext_cache_row_size(c) AS bytes)
             SELECT count(*)::int, COALESCE(sum(bytes), 0) / 1048576.0 FROM deleted', order_by)
          INTO batch_count, batch_mb
          USING COALESCE(min_age_hours, 0), min_access_count, batch_limit;
        EXIT WHEN batch_count = 0;
        evicted_count := evicted_count + batch_count;
        freed_size_mb := freed_size_mb + batch_mb;
        PERFORM @extschema@._steadytext_audit('cache_eviction'::text, jsonb_build_object(
            'evicted_count', batch_count, 'freed_size_mb', batch_mb,
            'eviction_type', eviction_type));
    END LOOP;
    remaining_entries := entries;
    remaining_size_mb := size_mb;
    RETURN NEXT;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_cache_scheduled_eviction() RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    enabled text := @extschema@.steadytext_config_get('cache_eviction_enabled'::text);
    r record;
BEGIN
    PERFORM @extschema@._steadytext_cache_lookups_fold();
    IF lower(COALESCE(enabled, 'true')) IN ('false', 'f', '0', 'no', 'off') THEN
        RETURN;
    END IF;
    SELECT * INTO r FROM @extschema@.steadytext_cache_evict_by_frecency(min_access_count => NULL);
    IF r.evicted_count > 0 THEN
        RAISE NOTICE 'Cache eviction completed: % entries evicted, % MB freed, % entries remain',
            r.evicted_count, round(r.freed_size_mb::numeric, 3), r.remaining_entries;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_session_model(setting_name text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN $1 <> ALL (ARRAY['steadytext.generation_model', 'steadytext.embedding_model',
                                      'steadytext.reranking_model'])
                THEN '{}'::jsonb
                WHEN nullif(trim(s.value), '') IS NULL
                  OR s.source IN ('default', 'configuration file', 'override')
                THEN '{}'::jsonb
                ELSE jsonb_build_object('model', trim(s.value)) END
    FROM (SELECT current_setting($1, true) AS value,
                 (SELECT p.source FROM pg_settings p WHERE p.name = $1) AS source) s
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_async(prompt text, max_tokens int DEFAULT 512)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF prompt IS NULL OR trim(prompt) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Prompt cannot be empty'::text);
    END IF;
    -- The limit is steadytext.max_tokens_limit, as for synchronous calls (4096 by default,
    -- the Python extension's fixed limit and message); loading the library defines it.
    PERFORM @extschema@.steadytext_version();
    IF max_tokens IS NOT NULL AND (max_tokens < 1
            OR max_tokens > current_setting('steadytext.max_tokens_limit')::int) THEN
        PERFORM @extschema@._steadytext_raise_p0001(format('max_tokens must be between 1 and %s',
            current_setting('steadytext.max_tokens_limit')));
    END IF;
    RETURN @extschema@._steadytext_enqueue('generate'::text, prompt,
        jsonb_build_object(
            'max_tokens', coalesce(max_tokens,
                @extschema@._steadytext_config_number('default_max_tokens'::text, 512::float8)::int),
            'use_cache', true,
            -- steadytext_generate(prompt, max_tokens)'s seed, its signature's default: the
            -- queued result equals the synchronous one.
            'seed', 42)
        || @extschema@._steadytext_session_model('steadytext.generation_model'::text), 5::int);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_embed_async(text_input text, use_cache boolean DEFAULT true,
                                       seed int DEFAULT 42, model text DEFAULT NULL,
                                       unsafe_mode boolean DEFAULT false)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF text_input IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Text cannot be null'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_lengths('text'::text, ARRAY[text_input]::text[]);
    IF trim(text_input) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Text cannot be empty'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_remote_model(model, unsafe_mode);
    PERFORM @extschema@.steadytext_version();
    RETURN @extschema@._steadytext_enqueue('embed'::text, text_input,
        jsonb_build_object(
            'text_input', text_input,
            'use_cache', coalesce(use_cache, true),
            'seed', coalesce(seed, @extschema@._steadytext_config_number('default_seed'::text, 42::float8)::int),
            'unsafe_mode', coalesce(unsafe_mode, false),
            'mode', coalesce(nullif(current_setting('steadytext.embedding_mode', true), ''),
                             'query'))
        || CASE WHEN model IS NULL
                THEN @extschema@._steadytext_session_model('steadytext.embedding_model'::text)
                ELSE jsonb_build_object('model', model) END, 5::int);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_get_async_result(request_id uuid, timeout_seconds int DEFAULT 30)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wait int := coalesce(timeout_seconds, 30);
    deadline timestamptz;
    r record;
BEGIN
    IF wait < 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Timeout cannot be negative'::text);
    END IF;
    deadline := clock_timestamp() + wait * interval '1 second';
    LOOP
        SELECT q.status, q.result, q.embedding, q.error, q.started_at IS NULL AS unclaimed,
               q.xmin = xid(pg_current_xact_id_if_assigned()) AS mine
        INTO r FROM @extschema@.steadytext_queue q
        WHERE q.request_id = $1 ORDER BY q.id DESC LIMIT 1;
        IF NOT FOUND THEN
            PERFORM @extschema@._steadytext_raise_p0001(format('Request ID %s not found', $1));
        END IF;
        CASE r.status
            WHEN 'completed' THEN RETURN coalesce(r.result, r.embedding::text);
            WHEN 'failed' THEN
                PERFORM @extschema@._steadytext_raise_p0001(('Async request failed: ' || r.error)::text);
            WHEN 'cancelled' THEN
                PERFORM @extschema@._steadytext_raise_p0001(
                    format('Async request %s was cancelled', $1));
            ELSE NULL;
        END CASE;
        IF r.mine THEN
            PERFORM @extschema@._steadytext_raise_p0001(format(
                'Async request %s was queued in this transaction; commit before waiting for it',
                $1));
        END IF;
        IF clock_timestamp() >= deadline THEN
            -- The Python extension's message word for word (callers match on it); why and
            -- how to fix it go into DETAIL and HINT.
            IF r.unclaimed THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = format('Timeout waiting for async result (%s seconds)', wait),
                    DETAIL = 'No worker has claimed the request.',
                    HINT = 'Queue workers run when pg_steadytext is in shared_preload_libraries '
                           '(steadytext.queue_workers, steadytext.queue_databases), or run '
                           '`st worker --dsn ...` on any host.';
            END IF;
            PERFORM @extschema@._steadytext_raise_p0001(
                format('Timeout waiting for async result (%s seconds)', wait));
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_queue_lease(worker text, lease_seconds int) RETURNS interval
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seconds int := coalesce(lease_seconds,
        @extschema@._steadytext_config_number('queue_lease_seconds'::text, 60::float8)::int);
BEGIN
    IF worker LIKE 'pg_steadytext:%' THEN
        IF worker = 'pg_steadytext:' || pg_backend_pid() AND EXISTS (
               SELECT 1 FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()
                 AND a.backend_type = 'pg_steadytext queue worker') THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'the worker name %s is reserved for pg_steadytext''s background worker of that '
            'process id; give st worker another name', worker);
    END IF;
    IF seconds NOT BETWEEN 0 AND 86400 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format(
            'lease_seconds must be between 0 and 86400, got %s', seconds);
    END IF;
    RETURN make_interval(secs => seconds);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_docs_only(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    seed int DEFAULT 42)
RETURNS TABLE(document text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.document FROM @extschema@.steadytext_rerank(query, documents, task, true::boolean, seed) r
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_top_k(
    query text, documents text[], top_k int,
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS TABLE(document text, score float8)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF top_k IS NULL OR top_k <= 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('top_k must be greater than 0'::text);
    END IF;
    RETURN QUERY
        SELECT r.document, CASE WHEN return_scores THEN r.score END
        FROM @extschema@.steadytext_rerank($1, $2, $4, true::boolean, $6) r
        ORDER BY r.score DESC LIMIT top_k;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_structured_async(request_type text, prompt text, kind text,
                                             constraint_value jsonb, max_tokens int,
                                             use_cache boolean, seed int)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF prompt IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Prompt cannot be null'::text);
    END IF;
    IF trim(prompt) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Prompt cannot be empty'::text);
    END IF;
    -- The limit is steadytext.max_tokens_limit, as for synchronous calls (4096 by default,
    -- the Python extension's fixed limit and message); loading the library defines it.
    PERFORM @extschema@.steadytext_version();
    IF max_tokens IS NOT NULL AND (max_tokens < 1
            OR max_tokens > current_setting('steadytext.max_tokens_limit')::int) THEN
        PERFORM @extschema@._steadytext_raise_p0001(format('max_tokens must be between 1 and %s',
            current_setting('steadytext.max_tokens_limit')));
    END IF;
    PERFORM @extschema@._steadytext_check_constraint(kind, constraint_value);
    RETURN @extschema@._steadytext_enqueue(request_type, prompt,
        jsonb_build_object(
            'max_tokens', coalesce(max_tokens,
                @extschema@._steadytext_config_number('default_max_tokens'::text, 512::float8)::int),
            'use_cache', coalesce(use_cache, true),
            'seed', coalesce(seed, @extschema@._steadytext_config_number('default_seed'::text, 42::float8)::int),
            CASE kind WHEN 'json' THEN 'schema' WHEN 'regex' THEN 'pattern'
                      WHEN 'grammar' THEN 'grammar' ELSE 'choices' END,
            constraint_value)
        || @extschema@._steadytext_session_model('steadytext.generation_model'::text), 5::int);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@._steadytext_rerank_params(query text, documents text[], task text,
                                          return_scores boolean, seed int)
RETURNS jsonb LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF query IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Query cannot be null'::text);
    END IF;
    IF trim(query) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Query cannot be empty'::text);
    END IF;
    IF documents IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Documents cannot be null'::text);
    END IF;
    IF cardinality(documents) = 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Documents array cannot be empty'::text);
    END IF;
    IF array_position(documents, NULL) IS NOT NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Documents cannot contain null elements'::text);
    END IF;
    PERFORM @extschema@._steadytext_check_lengths('query'::text, ARRAY[query]::text[]);
    PERFORM @extschema@._steadytext_check_lengths('task'::text, ARRAY[task]::text[]);
    PERFORM @extschema@._steadytext_check_lengths('document'::text, documents);
    -- Loads the library first, which defines the steadytext.* settings read below.
    PERFORM @extschema@.steadytext_version();
    RETURN jsonb_build_object('query', query, 'documents', to_jsonb(documents),
                              'task', task, 'return_scores', coalesce(return_scores, true),
                              'seed', coalesce(seed, @extschema@._steadytext_config_number('default_seed'::text, 42::float8)::int))
        || @extschema@._steadytext_session_model('steadytext.reranking_model'::text);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_async(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('rerank'::text, query,
        @extschema@._steadytext_rerank_params(query, documents, task, return_scores, seed), 5::int);
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_rerank_batch_async(
    queries text[], documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid[] LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q text;
    ids uuid[] := '{}';
BEGIN
    IF queries IS NULL OR cardinality(queries) = 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Queries cannot be empty'::text);
    END IF;
    -- Each query is checked as it is queued; an error rolls back the rows queued before it.
    FOREACH q IN ARRAY queries LOOP
        ids := ids || @extschema@._steadytext_enqueue('batch_rerank'::text, q,
            @extschema@._steadytext_rerank_params(q, documents, task, return_scores, seed), 5::int);
    END LOOP;
    RETURN ids;
END;
$$;

CREATE OR REPLACE FUNCTION @extschema@.steadytext_generate_from_prompt(slug text, variables jsonb,
                                                max_tokens int DEFAULT NULL,
                                                version int DEFAULT NULL)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate(
        @extschema@.steadytext_prompt_render(slug, variables, version, true::boolean), max_tokens)
$$;

-- Backups keep the configuration and the cache too (see the end of functions.sql); a restore
-- replaces the default configuration rows instead of failing on their keys.
CREATE TRIGGER steadytext_config_restore BEFORE INSERT ON @extschema@.steadytext_config
    FOR EACH ROW EXECUTE FUNCTION @extschema@._steadytext_config_restore();
REVOKE ALL ON FUNCTION @extschema@._steadytext_restoring() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._steadytext_restoring() TO PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._steadytext_config_restore() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_lookups', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_lookups_id_seq', '');
