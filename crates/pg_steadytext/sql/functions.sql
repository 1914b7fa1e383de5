-- pg_steadytext SQL-level functions: configuration, cache management, semantic search, labels
-- the Rust functions cannot declare themselves, and the st_* aliases. Runs after the Rust
-- functions exist.

-- Names resolve in pg_catalog alone while this file runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

---------------------------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------------------------

-- Whether this statement is part of restoring a dump: pg_dump's script runs with row_security
-- and check_function_bodies off (a session that turns both off itself is taken for one too).
CREATE FUNCTION @extschema@._steadytext_restoring() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT current_setting('row_security') = 'off' AND current_setting('check_function_bodies') = 'off'
$$;

-- Every configuration row is checked for its key's type and range however it is written
-- (steadytext_config_set, or an admin's INSERT or UPDATE), with the Python extension's texts for
-- its keys; every change is audited with the role that made it.
CREATE FUNCTION @extschema@._steadytext_config_check() RETURNS trigger
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

CREATE FUNCTION @extschema@._steadytext_config_audit() RETURNS trigger
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

-- pg_dump keeps this table's rows (below), and a restore writes them after CREATE EXTENSION
-- wrote the default ones: while restoring, a row for a key that is there already replaces it
-- (value, description, when and by whom) instead of failing on the key. Anywhere else an INSERT
-- of an existing key fails as before.
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

CREATE TRIGGER steadytext_config_check BEFORE INSERT OR UPDATE ON @extschema@.steadytext_config
    FOR EACH ROW EXECUTE FUNCTION @extschema@._steadytext_config_check();
CREATE TRIGGER steadytext_config_restore BEFORE INSERT ON @extschema@.steadytext_config
    FOR EACH ROW EXECUTE FUNCTION @extschema@._steadytext_config_restore();
CREATE TRIGGER steadytext_config_audit AFTER INSERT OR UPDATE OR DELETE ON @extschema@.steadytext_config
    FOR EACH ROW EXECUTE FUNCTION @extschema@._steadytext_config_audit();

-- Stores the value as a JSON string, as the Python extension did; every reader accepts a
-- number written as text. steadytext_admin only (EXECUTE and the table's privileges).
CREATE FUNCTION @extschema@.steadytext_config_set(config_key text, config_value text) RETURNS void
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO @extschema@.steadytext_config (key, value, updated_at, updated_by)
    VALUES (config_key, to_jsonb(config_value), now(), session_user)
    ON CONFLICT (key) DO UPDATE
        SET value = EXCLUDED.value, updated_at = now(), updated_by = session_user;
$$;

CREATE FUNCTION @extschema@.steadytext_config_get(config_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT value #>> '{}' FROM @extschema@.steadytext_config WHERE key = config_key
$$;


---------------------------------------------------------------------------------------------
-- Cache management
---------------------------------------------------------------------------------------------

-- Bytes a row takes in the cache: its key, prompt and value.
CREATE FUNCTION @extschema@._steadytext_cache_row_size(c @extschema@.steadytext_cache) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (pg_column_size(c.cache_key) + pg_column_size(c.prompt)
            + COALESCE(pg_column_size(c.response), 0)
            + COALESCE(pg_column_size(c.embedding), 0))::bigint
$$;

-- Folds the lookup rows into one (counts and the earliest start kept).
CREATE FUNCTION @extschema@._steadytext_cache_lookups_fold() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM @extschema@.steadytext_cache_lookups RETURNING hits, misses, since)
    INSERT INTO @extschema@.steadytext_cache_lookups (hits, misses, since)
    SELECT coalesce(sum(hits), 0), coalesce(sum(misses), 0), coalesce(min(since), now()) FROM gone
$$;

CREATE FUNCTION @extschema@.steadytext_cache_stats()
RETURNS TABLE(total_entries bigint, total_size_mb float8, cache_hit_rate float8,
              avg_access_count float8, oldest_entry timestamptz, newest_entry timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*),
           COALESCE(sum(@extschema@._steadytext_cache_row_size(c)), 0) / 1048576.0,
           (SELECT CASE WHEN coalesce(sum(l.hits + l.misses), 0) = 0 THEN 0.0
                        ELSE sum(l.hits)::float8 / sum(l.hits + l.misses) END
            FROM @extschema@.steadytext_cache_lookups l),
           COALESCE(avg(c.access_count), 0)::float8,
           min(c.created_at),
           max(c.created_at)
    FROM @extschema@.steadytext_cache c
$$;

-- Removes every row and starts the hit rate again.
CREATE FUNCTION @extschema@.steadytext_cache_clear() RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    removed bigint;
BEGIN
    WITH deleted AS (DELETE FROM @extschema@.steadytext_cache RETURNING 1)
    SELECT count(*) INTO removed FROM deleted;
    DELETE FROM @extschema@.steadytext_cache_lookups;
    INSERT INTO @extschema@.steadytext_cache_lookups DEFAULT VALUES;
    PERFORM @extschema@._steadytext_audit('cache_clear'::text,
        jsonb_build_object('removed', removed));
    RETURN removed;
END;
$$;

-- Shared by the two eviction functions: deletes batches of rows, in the order `order_by`
-- gives, among rows older than min_age_hours, until the entry and size targets hold or nothing
-- more may go. Each batch leaves an audit row. When only the entry target is exceeded, a batch
-- takes no more rows than the excess (a full batch would empty a small cache).
CREATE FUNCTION @extschema@._steadytext_cache_evict(
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

-- Oldest first (FIFO by creation time), as the Python extension.
CREATE FUNCTION @extschema@.steadytext_cache_evict_by_age(
    target_entries int DEFAULT NULL, target_size_mb float8 DEFAULT NULL,
    batch_size int DEFAULT 100, min_age_hours int DEFAULT 1)
RETURNS TABLE(evicted_count int, freed_size_mb float8, remaining_entries bigint,
              remaining_size_mb float8)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@._steadytext_cache_evict(
        target_entries, target_size_mb, batch_size, min_age_hours, NULL::int,
        'created_at ASC, id ASC'::text, 'age_based'::text)
$$;

-- Lowest frecency first (access count weighted by recency, see steadytext_cache_with_frecency).
-- Rows used at least min_access_count times are kept; NULL protects none.
CREATE FUNCTION @extschema@.steadytext_cache_evict_by_frecency(
    target_entries int DEFAULT NULL, target_size_mb float8 DEFAULT NULL,
    batch_size int DEFAULT 100, min_access_count int DEFAULT 2, min_age_hours int DEFAULT 1)
RETURNS TABLE(evicted_count int, freed_size_mb float8, remaining_entries bigint,
              remaining_size_mb float8)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@._steadytext_cache_evict(
        target_entries, target_size_mb, batch_size, min_age_hours, min_access_count,
        'frecency_score ASC, last_accessed ASC, id ASC'::text, 'frecency'::text)
$$;

-- For pg_cron: evicts by frecency to the configured targets unless cache_eviction_enabled is
-- false.
CREATE FUNCTION @extschema@.steadytext_cache_scheduled_eviction() RETURNS void
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

-- The rows frecency eviction would take first (older than one hour, lowest score first).
CREATE FUNCTION @extschema@.steadytext_cache_preview_eviction(preview_count int DEFAULT 10)
RETURNS TABLE(cache_key text, prompt text, access_count int, last_accessed timestamptz,
              created_at timestamptz, age_days float8, size_bytes bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.cache_key,
           CASE WHEN length(f.prompt) > 50 THEN left(f.prompt, 50) || '...' ELSE f.prompt END,
           f.access_count, f.last_accessed, f.created_at,
           EXTRACT(EPOCH FROM (now() - f.created_at))::float8 / 86400.0,
           (pg_column_size(f.cache_key) + pg_column_size(f.prompt)
            + COALESCE(pg_column_size(f.response), 0)
            + COALESCE(pg_column_size(f.embedding), 0))::bigint
    FROM @extschema@.steadytext_cache_with_frecency f
    WHERE f.created_at < now() - interval '1 hour'
    ORDER BY f.frecency_score ASC, f.last_accessed ASC, f.id ASC
    LIMIT preview_count
$$;

CREATE FUNCTION @extschema@.steadytext_cache_analyze_usage()
RETURNS TABLE(age_bucket text, entry_count bigint, avg_access_count float8,
              total_size_mb float8, percentage_of_cache float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    WITH rows AS (
        SELECT CASE
                   WHEN c.created_at > now() - interval '1 hour' THEN 1
                   WHEN c.created_at > now() - interval '1 day' THEN 2
                   WHEN c.created_at > now() - interval '7 days' THEN 3
                   WHEN c.created_at > now() - interval '30 days' THEN 4
                   ELSE 5 END AS bucket,
               c.access_count,
               @extschema@._steadytext_cache_row_size(c) AS bytes
        FROM @extschema@.steadytext_cache c),
    total AS (SELECT count(*) AS n FROM rows)
    SELECT (ARRAY['< 1 hour', '1 hour - 1 day', '1 day - 7 days', '7 days - 30 days',
                  '> 30 days'])[r.bucket],
           count(*), avg(r.access_count)::float8, sum(r.bytes) / 1048576.0,
           100.0 * count(*) / NULLIF((SELECT n FROM total), 0)
    FROM rows r
    GROUP BY r.bucket
    ORDER BY r.bucket
$$;

---------------------------------------------------------------------------------------------
-- Semantic search over the cache's embeddings (served by the HNSW index)
---------------------------------------------------------------------------------------------

-- Over the rows the calling role may see (its own; all for steadytext_admin). Its search_path is
-- set at the end of this file to pg_catalog and pgvector's schema (for the <=> operator).
-- pgvector's operator is named with its schema and every other operator with pg_catalog, so a
-- role that can create objects in pgvector's schema cannot shadow one (an exact-type match
-- would win over pg_catalog's on any search_path).
DO $semantic_search$
DECLARE
    vector_schema text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                           WHERE e.extname = 'vector');
BEGIN
    EXECUTE format($create$
CREATE FUNCTION @extschema@.steadytext_semantic_search(
    query_text text, limit_results int DEFAULT 10, similarity_threshold float8 DEFAULT 0.7)
RETURNS TABLE(content text, similarity float8, generated_text text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $body$
    WITH q AS (SELECT @extschema@.steadytext_embed(query_text) AS v)
    SELECT c.prompt, 1::float8 OPERATOR(pg_catalog.-) (c.embedding OPERATOR(%1$I.<=>) q.v),
           c.response
    FROM @extschema@.steadytext_cache c, q
    WHERE c.embedding IS NOT NULL
      AND 1::float8 OPERATOR(pg_catalog.-) (c.embedding OPERATOR(%1$I.<=>) q.v)
          OPERATOR(pg_catalog.>=) similarity_threshold
    ORDER BY c.embedding OPERATOR(%1$I.<=>) q.v
    LIMIT limit_results
$body$
$create$, vector_schema);
END
$semantic_search$;

---------------------------------------------------------------------------------------------
-- Labels pgrx cannot declare
---------------------------------------------------------------------------------------------

-- steadytext_embed is not LEAKPROOF (the Python extension marked it so): it raises errors that
-- depend on its input ("Text cannot be empty").
ALTER FUNCTION @extschema@.steadytext_version() LEAKPROOF;

---------------------------------------------------------------------------------------------
-- st_* aliases, with the Python extension's quirks in names and defaults. Those that write are
-- PARALLEL UNSAFE (the Python extension marked them SAFE).
---------------------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.st_generate(
    prompt text, max_tokens integer DEFAULT NULL, use_cache boolean DEFAULT true,
    seed integer DEFAULT 42, eos_string text DEFAULT '[EOS]', model text DEFAULT NULL,
    model_repo text DEFAULT NULL, model_filename text DEFAULT NULL, size text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate(prompt, max_tokens, use_cache, seed, eos_string,
        model, model_repo, model_filename, size, unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_generate_cached(
    prompt text, max_tokens integer DEFAULT NULL, seed integer DEFAULT 42)
RETURNS text LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_cached(prompt, max_tokens, seed)
$$;

CREATE FUNCTION @extschema@.st_embed(
    text_input text, use_cache boolean DEFAULT true, seed integer DEFAULT 42,
    model text DEFAULT NULL, unsafe_mode boolean DEFAULT false)
RETURNS @extschema@.vector LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_embed(text_input, use_cache, seed, model, unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_embed_cached(
    text_input text, seed integer DEFAULT 42, model text DEFAULT NULL,
    unsafe_mode boolean DEFAULT false)
RETURNS @extschema@.vector LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_embed_cached(text_input, seed, model, unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_embed_batch(texts text[])
RETURNS TABLE(index integer, embedding @extschema@.vector)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_embed_batch(texts)
$$;

CREATE FUNCTION @extschema@.st_version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_version()
$$;

CREATE FUNCTION @extschema@.st_info() RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_info()
$$;

CREATE FUNCTION @extschema@.st_config_get(key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_config_get(key)
$$;

CREATE FUNCTION @extschema@.st_config_set(key text, value text) RETURNS void
LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_config_set(key, value)
$$;

CREATE FUNCTION @extschema@.st_cache_stats()
RETURNS TABLE(total_entries bigint, total_size_mb float8, cache_hit_rate float8,
              avg_access_count float8, oldest_entry timestamptz, newest_entry timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_cache_stats()
$$;

CREATE FUNCTION @extschema@.st_cache_clear() RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_cache_clear()
$$;

CREATE FUNCTION @extschema@.st_cache_evict_by_age(
    target_entries int DEFAULT NULL, target_size_mb float8 DEFAULT NULL,
    batch_size int DEFAULT 100, min_age_hours int DEFAULT 1)
RETURNS TABLE(evicted_count int, freed_size_mb float8, remaining_entries bigint,
              remaining_size_mb float8)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_cache_evict_by_age(
        target_entries, target_size_mb, batch_size, min_age_hours)
$$;

CREATE FUNCTION @extschema@.st_cache_preview_eviction(preview_count int DEFAULT 10)
RETURNS TABLE(cache_key text, prompt text, access_count int, last_accessed timestamptz,
              created_at timestamptz, age_days float8, size_bytes bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_cache_preview_eviction(preview_count)
$$;

CREATE FUNCTION @extschema@.st_cache_analyze_usage()
RETURNS TABLE(age_bucket text, entry_count bigint, avg_access_count float8,
              total_size_mb float8, percentage_of_cache float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_cache_analyze_usage()
$$;

CREATE FUNCTION @extschema@.st_cache_scheduled_eviction() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_cache_scheduled_eviction()
$$;

CREATE FUNCTION @extschema@.st_daemon_start() RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_daemon_start()
$$;

CREATE FUNCTION @extschema@.st_daemon_stop() RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_daemon_stop()
$$;

-- STABLE, as the Python extension's alias (it still records the status row).
CREATE FUNCTION @extschema@.st_daemon_status()
RETURNS TABLE(daemon_id text, status text, endpoint text, last_heartbeat timestamptz, uptime_seconds int)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_daemon_status()
$$;

CREATE FUNCTION @extschema@.st_semantic_search(
    query_text text, limit_results int DEFAULT 10, similarity_threshold float8 DEFAULT 0.7)
RETURNS TABLE(content text, similarity float8, generated_text text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_semantic_search(
        query_text, limit_results, similarity_threshold)
$$;

---------------------------------------------------------------------------------------------
-- The audit trail (admin only)
---------------------------------------------------------------------------------------------

-- Every event: the audit table's rows and the refusals kept in the audit file.
CREATE VIEW @extschema@.steadytext_audit_events WITH (security_invoker = true) AS
SELECT a.created_at, a.event_type, a.user_id, a.details, a.success
FROM @extschema@.steadytext_audit_log a
UNION ALL
SELECT f.created_at, f.event_type, f.user_id, f.details, false
FROM @extschema@._steadytext_audit_file() f;

ALTER VIEW @extschema@.steadytext_cache_with_frecency SET (security_invoker = true);

-- Database-side counters for monitoring, one row per value, named like the daemon's Prometheus
-- metrics (the daemon's /metrics covers inference; these the queue, the cache table and the
-- rate limits). Counts over every role's rows, never their texts: steadytext_admin only.
CREATE FUNCTION @extschema@.steadytext_metrics()
RETURNS TABLE(metric text, labels jsonb, value float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'steadytext_queue_requests', jsonb_build_object('status', s.status), count(q.id)::float8
    FROM unnest(ARRAY['pending', 'processing', 'completed', 'failed', 'cancelled']) s(status)
    LEFT JOIN @extschema@.steadytext_queue q ON q.status = s.status
    GROUP BY s.status
    UNION ALL
    SELECT 'steadytext_queue_oldest_pending_seconds', '{}',
           COALESCE(extract(epoch FROM now() - min(q.created_at)), 0)::float8
    FROM @extschema@.steadytext_queue q WHERE q.status = 'pending'
    UNION ALL
    SELECT 'steadytext_cache_table_entries', '{}', count(*)::float8
    FROM @extschema@.steadytext_cache
    UNION ALL
    SELECT 'steadytext_cache_table_lookups_total', jsonb_build_object('result', r.result),
           r.n::float8
    FROM (SELECT COALESCE(sum(l.hits), 0) AS hits, COALESCE(sum(l.misses), 0) AS misses
          FROM @extschema@.steadytext_cache_lookups l) t,
         LATERAL (VALUES ('hit', t.hits), ('miss', t.misses)) r(result, n)
    UNION ALL
    SELECT 'steadytext_cache_table_hit_rate', '{}', st.cache_hit_rate
    FROM @extschema@.steadytext_cache_stats() st
    UNION ALL
    SELECT 'steadytext_rate_limit_refusals_total', '{}', count(*)::float8
    FROM @extschema@._steadytext_audit_file() f WHERE f.event_type = 'rate_limit_refused'
$$;

---------------------------------------------------------------------------------------------
-- Privileges. Only the extension's own objects: no table has a PUBLIC privilege. PUBLIC keeps
-- EXECUTE on the side-effect-free inference functions (drop-in compatibility: a role that could
-- call steadytext_generate still can; limits and rate limits bound them, and a DBA may revoke).
-- steadytext_user adds what writes or reads a role's own rows; steadytext_admin adds
-- configuration, the cache, rate limits, the audit trail and the daemon; steadytext_worker the
-- claim protocol. See the README's "Security".
---------------------------------------------------------------------------------------------

GRANT SELECT ON @extschema@.steadytext_cache TO steadytext_user;
GRANT SELECT, UPDATE, DELETE ON @extschema@.steadytext_cache TO steadytext_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_cache_lookups TO steadytext_admin;
GRANT USAGE ON SEQUENCE @extschema@.steadytext_cache_lookups_id_seq TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_cache_with_frecency TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_queue TO steadytext_user, steadytext_worker;
GRANT SELECT, DELETE ON @extschema@.steadytext_queue TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_config TO steadytext_user;
GRANT INSERT, UPDATE, DELETE ON @extschema@.steadytext_config TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_daemon_health TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_rate_limits TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_audit_log, @extschema@.steadytext_audit_events TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_prompts, @extschema@.steadytext_prompt_versions TO steadytext_user;

DO $privileges$
DECLARE
    public_functions text[] := ARRAY[
        'steadytext_generate', 'steadytext_generate_stream', 'st_generate', 'st_generate_stream',
        'steadytext_embed', 'steadytext_embed_batch', 'st_embed', 'st_embed_batch',
        'steadytext_generate_json', 'steadytext_generate_regex', 'steadytext_generate_choice',
        'steadytext_generate_grammar', 'st_generate_json', 'st_generate_regex',
        'st_generate_choice', 'st_generate_grammar',
        'steadytext_rerank', 'steadytext_rerank_docs_only', 'steadytext_rerank_top_k',
        'steadytext_rerank_batch', 'st_rerank', 'st_rerank_docs_only', 'st_rerank_top_k',
        'st_rerank_batch', 'steadytext_version', 'st_version',
        '_steadytext_raise_p0001', '_steadytext_check_constraint', '_steadytext_restoring',
        '_steadytext_check_lengths',
        'steadytext_extract_facts', 'steadytext_deduplicate_facts', 'st_extract_facts',
        'st_deduplicate_facts', 'steadytext_summarize_accumulate', 'steadytext_summarize_combine',
        'steadytext_summarize_finalize', 'steadytext_summarize_combine_states',
        'steadytext_summarize_text', 'st_summarize_text', 'steadytext_summarize',
        'steadytext_summarize_partial', 'steadytext_summarize_final', 'st_summarize',
        '_steadytext_init_python'];
    user_functions text[] := ARRAY[
        'steadytext_generate_cached', 'st_generate_cached', 'steadytext_embed_cached',
        'st_embed_cached', 'steadytext_semantic_search', 'st_semantic_search',
        'steadytext_config_get', 'st_config_get', 'steadytext_daemon_status', 'st_daemon_status',
        'steadytext_info', 'st_info', 'steadytext_check_rate_limit',
        'steadytext_generate_async', 'st_generate_async', 'steadytext_generate_batch_async',
        'st_generate_batch_async', 'steadytext_embed_async', 'st_embed_async',
        'steadytext_embed_batch_async', 'st_embed_batch_async', 'steadytext_check_async',
        'st_check_async', 'steadytext_check_async_batch', 'st_check_async_batch',
        'steadytext_get_async_result', 'st_get_async_result', 'steadytext_cancel_async',
        'st_cancel_async', 'steadytext_set_async_priority', 'st_set_async_priority',
        '_steadytext_enqueue_empty', '_steadytext_config_number',
        'steadytext_generate_json_async', 'steadytext_generate_regex_async',
        'steadytext_generate_choice_async', 'steadytext_generate_grammar_async',
        'st_generate_json_async', 'st_generate_regex_async', 'st_generate_choice_async',
        'st_generate_grammar_async', 'steadytext_rerank_async', 'st_rerank_async',
        'steadytext_rerank_batch_async', 'st_rerank_batch_async',
        '_steadytext_enqueue', '_steadytext_session_model', '_steadytext_check_remote_model',
        '_steadytext_structured_async', '_steadytext_rerank_params',
        'steadytext_prompt_create', 'steadytext_prompt_update', 'steadytext_prompt_delete',
        'steadytext_prompt_get', 'steadytext_prompt_render', 'steadytext_prompt_list',
        'steadytext_prompt_versions', 'st_prompt_create', 'st_prompt_update', 'st_prompt_delete',
        'st_prompt_get', 'st_prompt_render', 'st_prompt_list', 'st_prompt_versions',
        'steadytext_generate_from_prompt', '_get_next_version', '_validate_jinja2_template',
        '_steadytext_render_template', '_steadytext_prompt_id'];
    admin_functions text[] := ARRAY[
        'steadytext_config_set', 'st_config_set', 'steadytext_cache_stats', 'st_cache_stats',
        'steadytext_cache_clear', 'st_cache_clear', 'steadytext_cache_evict_by_age',
        'st_cache_evict_by_age', 'steadytext_cache_evict_by_frecency',
        'steadytext_cache_scheduled_eviction', 'st_cache_scheduled_eviction',
        'steadytext_cache_preview_eviction', 'st_cache_preview_eviction',
        'steadytext_cache_analyze_usage', 'st_cache_analyze_usage', '_steadytext_cache_evict',
        '_steadytext_cache_row_size', '_steadytext_cache_lookups_fold', 'steadytext_daemon_start', 'st_daemon_start',
        'steadytext_daemon_stop', 'st_daemon_stop', '_steadytext_audit',
        '_steadytext_audit_file', 'steadytext_metrics'];
    worker_functions text[] := ARRAY[
        'steadytext_queue_claim', 'steadytext_queue_heartbeat', 'steadytext_queue_complete',
        'steadytext_queue_fail', 'steadytext_queue_release'];
    -- st cache sync: the functions check which of the two roles (and config row) may write
    sync_functions text[] := ARRAY['steadytext_cache_export', 'steadytext_cache_import'];
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname::text AS name, p.prokind
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass
             AND d.objid = p.oid AND d.deptype = 'e'
             AND d.refclassid = 'pg_catalog.pg_extension'::regclass
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
        IF f.name = ANY (public_functions) THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f.sig);
        ELSIF f.name = ANY (user_functions) THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO steadytext_user', f.sig);
        ELSIF f.name = ANY (admin_functions) THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        ELSIF f.name = ANY (worker_functions) THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker', f.sig);
        ELSIF f.name = ANY (sync_functions) THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker, steadytext_admin', f.sig);
        END IF;
    END LOOP;
END
$privileges$;


---------------------------------------------------------------------------------------------
-- Backups. pg_dump writes an extension's objects as CREATE EXTENSION alone, rows included,
-- unless the extension names a table as holding user data. Every table of rows a user or an
-- admin made is named, so its rows are dumped and restored with the database (and sequences go
-- on from where they were): the queue, rate limits, the audit log, prompts, the configuration
-- (a restore replaces the default rows: _steadytext_config_restore), the cache and its lookup
-- counts (computed work: `pg_dump --exclude-table-data=steadytext_cache` leaves it out). Not
-- named: daemon health, which the daemon's state rewrites.
---------------------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_rate_limits', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_prompt_versions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_lookups', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.steadytext_cache_lookups_id_seq', '');

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
