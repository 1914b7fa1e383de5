-- steadytext_generate_stream: real token streaming whose rows add up to steadytext_generate.
BEGIN;
SELECT plan(7);

SELECT ok((SELECT count(*) FROM steadytext_generate_stream('Write a haiku about PostgreSQL', 32, false)) > 1,
          'several rows, one per piece');
SELECT test_helpers.same((SELECT string_agg(t, '' ORDER BY n)
           FROM steadytext_generate_stream('Write a haiku about PostgreSQL', 32, false) WITH ORDINALITY AS s(t, n)),
          steadytext_generate('Write a haiku about PostgreSQL', 32, false),
          'streamed pieces add up to exactly the non-streamed text');
SELECT test_helpers.same((SELECT string_agg(t, '' ORDER BY n) FROM st_generate_stream('Write a haiku about PostgreSQL', 32, false)
           WITH ORDINALITY AS s(t, n)),
          (SELECT string_agg(t, '' ORDER BY n) FROM steadytext_generate_stream('Write a haiku about PostgreSQL', 32, false)
           WITH ORDINALITY AS s(t, n)),
          'the alias streams the same pieces');
SELECT throws_ok($$SELECT steadytext_generate_stream(NULL)$$, 'P0001', 'Prompt cannot be null');
SELECT throws_ok($$SELECT steadytext_generate_stream('')$$, 'P0001', 'Prompt cannot be empty');

-- Rows arrive while the model decodes: through a cursor, the first row comes back long
-- before the last one is produced.
CREATE TEMP TABLE marks(label text, at timestamptz);
DECLARE c NO SCROLL CURSOR FOR
    SELECT steadytext_generate_stream('Write a long story about a dragon', 200, false);
INSERT INTO marks VALUES ('start', clock_timestamp());
MOVE FORWARD 1 IN c;
INSERT INTO marks VALUES ('first', clock_timestamp());
MOVE FORWARD ALL IN c;
INSERT INTO marks VALUES ('end', clock_timestamp());
CLOSE c;
SELECT ok((SELECT (f.at - s.at) * 4 < (e.at - s.at) FROM marks s, marks f, marks e
           WHERE s.label = 'start' AND f.label = 'first' AND e.label = 'end'),
          'the first row arrives before a quarter of the generation time has passed');

SET LOCAL steadytext.generation_model = '/nonexistent/model.gguf';
SELECT is((SELECT count(*)::int FROM steadytext_generate_stream('hi', 8, false)), 0,
          'no model: an empty stream');

SELECT * FROM finish();
ROLLBACK;
