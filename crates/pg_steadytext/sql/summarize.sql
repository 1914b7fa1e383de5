-- The summarization aggregates (their steps are Rust: src/summarize.rs) and the st_* aliases.
-- The summary of a set of rows does not depend on their order or on the plan: serial, parallel
-- (combine) and partial/final aggregation give the same bytes.

-- Names resolve in pg_catalog alone while this file runs (see schema.sql).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE FUNCTION @extschema@.steadytext_summarize_combine_states(state1 jsonb, partial_state jsonb)
RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_summarize_combine(state1, partial_state)
$$;

CREATE AGGREGATE @extschema@.steadytext_summarize(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate,
    STYPE = jsonb,
    FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

-- The state without the final step, for continuous aggregates; steadytext_summarize_final
-- summarises such states.
CREATE AGGREGATE @extschema@.steadytext_summarize_partial(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate,
    STYPE = jsonb,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

CREATE AGGREGATE @extschema@.steadytext_summarize_final(jsonb) (
    SFUNC = @extschema@.steadytext_summarize_combine_states,
    STYPE = jsonb,
    FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

CREATE AGGREGATE @extschema@.st_summarize(text, jsonb) (
    SFUNC = @extschema@.steadytext_summarize_accumulate,
    STYPE = jsonb,
    FINALFUNC = @extschema@.steadytext_summarize_finalize,
    COMBINEFUNC = @extschema@.steadytext_summarize_combine,
    PARALLEL = SAFE
);

CREATE FUNCTION @extschema@.st_summarize_text(input_text text, metadata jsonb DEFAULT '{}',
                                  model text DEFAULT NULL, unsafe_mode boolean DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_summarize_text(input_text, metadata, model, unsafe_mode)
$$;

CREATE FUNCTION @extschema@.st_extract_facts(input_text text, max_facts int DEFAULT 10)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_extract_facts(input_text, max_facts)
$$;

-- The Python extension's alias has its own default threshold (0.8).
CREATE FUNCTION @extschema@.st_deduplicate_facts(facts jsonb, similarity_threshold float8 DEFAULT 0.8)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT @extschema@.steadytext_deduplicate_facts(facts, similarity_threshold)
$$;

SELECT pg_catalog.set_config('search_path', '@extschema@', true);
