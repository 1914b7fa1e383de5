-- Helpers for the pgTAP files, installed once by run.sh (schema test_helpers).
CREATE SCHEMA test_helpers;

-- Runs q and reports a cancellation as "SQLSTATE: message". PL/pgSQL's WHEN OTHERS (and so
-- throws_ok) cannot catch a cancellation: it has to be caught by name.
CREATE FUNCTION test_helpers.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'completed';
EXCEPTION WHEN query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- is(), but a NULL on either side fails: is(f(x), f(x)) would pass when f returns NULL twice.
CREATE FUNCTION test_helpers.same(have anyelement, want anyelement, description text)
RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN have IS NULL OR want IS NULL
                THEN fail(description) || E'\n# a side is NULL'
                ELSE is(have, want, description) END
$$;

-- The text of a statement's EXPLAIN.
CREATE FUNCTION test_helpers.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;

-- Runs q; 'ok', or "SQLSTATE: message" (for checks made under another role, where pgTAP's own
-- bookkeeping tables cannot be written).
CREATE FUNCTION test_helpers.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- A libpq connection string to this database as a role (for dblink: a session of its own).
CREATE FUNCTION test_helpers.conn(role text DEFAULT 'postgres') RETURNS text LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s',
                  current_setting('unix_socket_directories'), current_setting('port'), current_database(), role)
$$;

-- error_of in a session of the login role `role` (its statement commits there).
CREATE FUNCTION test_helpers.error_as(role text, q text) RETURNS text LANGUAGE sql AS $$
    SELECT outcome FROM dblink(test_helpers.conn(role), format('SELECT test_helpers.error_of(%L)', q))
        AS d(outcome text)
$$;

GRANT USAGE ON SCHEMA test_helpers TO PUBLIC;
