-- pg_steadytext structured generation and reranking: the SQL forms over the Rust functions,
-- their *_async forms (handled by the queue workers) and st_* aliases.

-- Names resolve in pg_catalog alone while this file runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

---------------------------------------------------------------------------------------------
-- Reranking
---------------------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.steadytext_rerank_docs_only(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    seed int DEFAULT 42)
RETURNS TABLE(document text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.document FROM @extschema@.steadytext_rerank(query, documents, task, true::boolean, seed) r
$$;

CREATE FUNCTION @extschema@.steadytext_rerank_top_k(
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

---------------------------------------------------------------------------------------------
-- Async forms (sql/queue.sql has the queue; the workers have a handler per request type)
---------------------------------------------------------------------------------------------

-- The checks every *_async structured function makes before queueing (the library checks the
-- constraint again in _steadytext_enqueue).
CREATE FUNCTION @extschema@._steadytext_structured_async(request_type text, prompt text, kind text,
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

CREATE FUNCTION @extschema@.steadytext_generate_json_async(prompt text, schema jsonb,
                                               max_tokens int DEFAULT 512,
                                               use_cache boolean DEFAULT true,
                                               seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF schema IS NULL THEN
        PERFORM @extschema@._steadytext_raise_p0001('Schema cannot be null'::text);
    END IF;
    RETURN @extschema@._steadytext_structured_async('generate_json'::text, prompt, 'json'::text,
                                                    schema, max_tokens, use_cache, seed);
END;
$$;

CREATE FUNCTION @extschema@.steadytext_generate_regex_async(prompt text, pattern text,
                                                max_tokens int DEFAULT 512,
                                                use_cache boolean DEFAULT true,
                                                seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pattern IS NULL OR pattern = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Pattern cannot be null or empty'::text);
    END IF;
    RETURN @extschema@._steadytext_structured_async('generate_regex'::text, prompt, 'regex'::text,
                                                    to_jsonb(pattern), max_tokens, use_cache, seed);
END;
$$;

CREATE FUNCTION @extschema@.steadytext_generate_choice_async(prompt text, choices text[],
                                                 max_tokens int DEFAULT 512,
                                                 use_cache boolean DEFAULT true,
                                                 seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF choices IS NULL OR cardinality(choices) = 0 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Choices cannot be null or empty'::text);
    END IF;
    IF cardinality(choices) < 2 THEN
        PERFORM @extschema@._steadytext_raise_p0001('Must provide at least 2 choices'::text);
    END IF;
    RETURN @extschema@._steadytext_structured_async('generate_choice'::text, prompt, 'choice'::text,
                                                    to_jsonb(choices), max_tokens, use_cache, seed);
END;
$$;

-- New: a Lark grammar (see steadytext_generate_grammar).
CREATE FUNCTION @extschema@.steadytext_generate_grammar_async(prompt text, grammar text,
                                                  max_tokens int DEFAULT 512,
                                                  use_cache boolean DEFAULT true,
                                                  seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF grammar IS NULL OR trim(grammar) = '' THEN
        PERFORM @extschema@._steadytext_raise_p0001('Grammar cannot be null or empty'::text);
    END IF;
    RETURN @extschema@._steadytext_structured_async('generate_grammar'::text, prompt,
                                                    'grammar'::text, to_jsonb(grammar), max_tokens,
                                                    use_cache, seed);
END;
$$;

-- The synchronous function's checks (the Python extension queued anything).
CREATE FUNCTION @extschema@._steadytext_rerank_params(query text, documents text[], task text,
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

CREATE FUNCTION @extschema@.steadytext_rerank_async(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN @extschema@._steadytext_enqueue('rerank'::text, query,
        @extschema@._steadytext_rerank_params(query, documents, task, return_scores, seed), 5::int);
END;
$$;

-- One 'batch_rerank' row per query, each with that query's parameters.
CREATE FUNCTION @extschema@.steadytext_rerank_batch_async(
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

---------------------------------------------------------------------------------------------
-- st_* aliases (the structured ones take no model, as in the Python extension)
---------------------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.st_generate_json(prompt text, schema jsonb, max_tokens int DEFAULT NULL,
                                 use_cache boolean DEFAULT true, seed int DEFAULT 42,
                                 unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_json(prompt, schema, max_tokens, use_cache, seed,
                                                unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_generate_regex(prompt text, pattern text, max_tokens int DEFAULT NULL,
                                  use_cache boolean DEFAULT true, seed int DEFAULT 42,
                                  unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_regex(prompt, pattern, max_tokens, use_cache, seed,
                                                 unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_generate_choice(prompt text, choices text[], max_tokens int DEFAULT NULL,
                                   use_cache boolean DEFAULT true, seed int DEFAULT 42,
                                   unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_choice(prompt, choices, max_tokens, use_cache, seed,
                                                  unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_rerank(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS TABLE(document text, score float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_rerank(query, documents, task, return_scores, seed)
$$;

CREATE FUNCTION @extschema@.st_rerank_docs_only(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    seed int DEFAULT 42)
RETURNS TABLE(document text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_rerank_docs_only(query, documents, task, seed)
$$;

-- As in the Python extension: the parameter is named k and defaults to 5.
CREATE FUNCTION @extschema@.st_rerank_top_k(
    query text, documents text[], k int DEFAULT 5,
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS TABLE(document text, score float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_rerank_top_k(query, documents, k, task, return_scores, seed)
$$;

CREATE FUNCTION @extschema@.st_rerank_batch(
    queries text[], documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS TABLE(query_index int, document text, score float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.steadytext_rerank_batch(queries, documents, task, return_scores, seed)
$$;

CREATE FUNCTION @extschema@.st_rerank_async(
    query text, documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_rerank_async(query, documents, task, return_scores, seed)
$$;

CREATE FUNCTION @extschema@.st_rerank_batch_async(
    queries text[], documents text[],
    task text DEFAULT 'Given a web search query, retrieve relevant passages that answer the query',
    return_scores boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid[] LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_rerank_batch_async(queries, documents, task, return_scores, seed)
$$;

CREATE FUNCTION @extschema@.st_generate_grammar(prompt text, grammar text, max_tokens int DEFAULT NULL,
                                    use_cache boolean DEFAULT true, seed int DEFAULT 42,
                                    unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_grammar(prompt, grammar, max_tokens, use_cache, seed,
                                                   unsafe_mode)
$$;

-- The structured *_async forms' aliases (the Python extension had none; the README promised
-- an st_* alias for every function).
CREATE FUNCTION @extschema@.st_generate_json_async(prompt text, schema jsonb, max_tokens int DEFAULT 512,
                                       use_cache boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_json_async(prompt, schema, max_tokens, use_cache, seed)
$$;

CREATE FUNCTION @extschema@.st_generate_regex_async(prompt text, pattern text, max_tokens int DEFAULT 512,
                                        use_cache boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_regex_async(prompt, pattern, max_tokens, use_cache,
                                                       seed)
$$;

CREATE FUNCTION @extschema@.st_generate_choice_async(prompt text, choices text[], max_tokens int DEFAULT 512,
                                         use_cache boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_choice_async(prompt, choices, max_tokens, use_cache,
                                                        seed)
$$;

CREATE FUNCTION @extschema@.st_generate_grammar_async(prompt text, grammar text, max_tokens int DEFAULT 512,
                                          use_cache boolean DEFAULT true, seed int DEFAULT 42)
RETURNS uuid LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_generate_grammar_async(prompt, grammar, max_tokens, use_cache,
                                                         seed)
$$;

CREATE FUNCTION @extschema@.st_set_async_priority(request_id uuid, priority int)
RETURNS boolean LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_set_async_priority(request_id, priority)
$$;

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
