-- Every error the Python extension raises, word for word: each statement of
-- reference-errors.tsv gives the Python extension's SQLSTATE and message (00000: it succeeded),
-- unless docs/compatibility.md lists the statement as a deliberate difference, with what this
-- extension answers instead and why. The doc is checked too: each of its rows names a statement
-- of the list, quotes the Python outcome the list holds, and gives a reason.

-- Two requests, committed (waiting in the transaction that queued a request is an error of its
-- own): one pending, one failed. Removed at the end.
DELETE FROM steadytext_queue WHERE request_id IN ('00000000-0000-4000-8000-000000000001',
                                                  '00000000-0000-4000-8000-000000000002');
INSERT INTO steadytext_queue (request_id, request_type, prompt, params, status, error, user_id)
VALUES ('00000000-0000-4000-8000-000000000001', 'generate', 'Hi', '{"max_tokens": 4}', 'pending', NULL, session_user),
       ('00000000-0000-4000-8000-000000000002', 'generate', 'Hi', '{"max_tokens": 4}', 'failed',
        'the model ran out of patience', session_user);

BEGIN;

CREATE TEMP TABLE ref_lines(n serial, line text);
\copy ref_lines(line) FROM 'tests/pgtap/reference-errors.tsv' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
CREATE TEMP TABLE doc_lines(n serial, line text);
\copy doc_lines(line) FROM 'docs/compatibility.md' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')

-- An outcome as the two files write it: 'P0001: message', or 'succeeds'.
CREATE TEMP VIEW reference AS
SELECT n, split_part(line, E'\t', 1) AS stmt,
       CASE split_part(line, E'\t', 2) WHEN '00000' THEN 'succeeds'
            ELSE split_part(line, E'\t', 2) || ': ' || split_part(line, E'\t', 3) END AS outcome
FROM ref_lines WHERE line IS NOT NULL AND line NOT LIKE '#%';

-- The deliberate differences: rows "| `statement` | `python` | `here` | why |".
CREATE TEMP VIEW deliberate AS
SELECT n, m[1] AS stmt, m[2] AS python, m[3] AS here, trim(m[4]) AS why
FROM doc_lines, regexp_match(line, '^\| `(SELECT [^`]*)` \| `([^`]*)` \| `([^`]*)` \|(.*)\|$') AS m
WHERE m IS NOT NULL;

-- What a statement does here. A statement whose one value is false or NULL has not succeeded
-- (the list's succeeding statements end in a comparison or IS [NOT] NULL).
CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    value text;
    state text;
    message text;
BEGIN
    EXECUTE stmt INTO value;
    RETURN CASE WHEN value IS NULL THEN 'returns NULL'
                WHEN value = 'false' THEN 'returns false' ELSE 'succeeds' END;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    RETURN state || ': ' || message;
END $$;

-- An expected outcome that ends in "..." is a prefix (the rest was Python's exception text).
CREATE FUNCTION pg_temp.agrees(actual text, expected text) RETURNS bool LANGUAGE sql AS $$
    SELECT CASE WHEN expected LIKE '%...'
                THEN left(actual, length(expected) - 3) = left(expected, length(expected) - 3)
                ELSE actual = expected END
$$;

-- A prompt with two variables, for the registry's statements.
CREATE TEMP TABLE setup AS SELECT steadytext_prompt_create('ref-existing', 'Hello {{ a }} {{ b }}');

CREATE TEMP TABLE outcomes AS
SELECT r.n, r.stmt, r.outcome AS python, d.here, pg_temp.outcome(r.stmt) AS actual
FROM reference r LEFT JOIN deliberate d USING (stmt);

SELECT plan((SELECT count(*)::int FROM outcomes) + 2 * (SELECT count(*)::int FROM deliberate) + 2);

SELECT is((SELECT count(*)::int FROM reference), (SELECT count(DISTINCT stmt)::int FROM reference),
          'each statement appears once in the reference list');
SELECT ok((SELECT count(*) FROM deliberate) > 0, 'docs/compatibility.md has its table of differences');

-- Each statement: the Python outcome, or the documented one.
SELECT is(CASE WHEN pg_temp.agrees(actual, coalesce(here, python)) THEN coalesce(here, python) ELSE actual END,
          coalesce(here, python),
          CASE WHEN here IS NULL THEN 'as the Python extension: ' ELSE 'documented difference: ' END || stmt)
FROM outcomes ORDER BY n;

-- Each documented difference names a statement of the list and quotes its Python outcome.
SELECT is(r.outcome, d.python, 'docs/compatibility.md quotes the Python outcome of ' || d.stmt)
FROM deliberate d LEFT JOIN reference r USING (stmt) ORDER BY d.n;
SELECT ok(d.why <> '' AND d.here <> d.python, 'docs/compatibility.md says why: ' || d.stmt)
FROM deliberate d ORDER BY d.n;

SELECT * FROM finish();
ROLLBACK;
DELETE FROM steadytext_queue WHERE request_id IN ('00000000-0000-4000-8000-000000000001',
                                                  '00000000-0000-4000-8000-000000000002');
