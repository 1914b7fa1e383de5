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
