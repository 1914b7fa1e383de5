-- steadytext_generate_stream: real token streaming whose rows add up to steadytext_generate.
BEGIN;
SELECT plan(10);

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

-- A budget that ends inside a multi-byte character (SmolLM2 answers this prompt in emoji, each
-- several tokens) drops the character's first bytes, on every route: never U+FFFD, the stream
-- equal to the text, each output a prefix of the longest.
CREATE TEMP TABLE cuts AS
SELECT b,
       steadytext_generate('Reply with five star emojis and nothing else.', b, false) AS via_daemon,
       (SELECT string_agg(p, '' ORDER BY k) FROM steadytext_generate_stream('Reply with five star emojis and nothing else.', b, false)
            WITH ORDINALITY AS x(p, k)) AS streamed
FROM generate_series(1, 12) b;
SET LOCAL steadytext.use_daemon = off;
ALTER TABLE cuts ADD COLUMN in_backend text;
UPDATE cuts SET in_backend = steadytext_generate('Reply with five star emojis and nothing else.', b, false);
RESET steadytext.use_daemon;
SELECT ok((SELECT bool_and(position(E'\uFFFD' IN coalesce(via_daemon, E'\uFFFD') || coalesce(streamed, '') || coalesce(in_backend, E'\uFFFD')) = 0)
           FROM cuts), 'no budget gives a U+FFFD, through the daemon, streamed or in the backend');
SELECT ok((SELECT bool_and(via_daemon = in_backend AND coalesce(streamed, '') = via_daemon
                           AND starts_with((SELECT via_daemon FROM cuts WHERE b = 12), via_daemon)) FROM cuts),
          'the routes agree and every output is a prefix of the longest');
-- a budget ended inside a character: one more token, no more text, and the text goes on with
-- a multi-byte character
SELECT ok(EXISTS (SELECT 1 FROM cuts c JOIN cuts p ON p.b = c.b - 1
                  WHERE c.via_daemon = p.via_daemon
                    AND octet_length(substr((SELECT via_daemon FROM cuts WHERE b = 12), length(c.via_daemon) + 1, 1)) > 1),
          'some budget ends inside a character (the test reaches the case it is about)');

SET LOCAL steadytext.generation_model = '/nonexistent/model.gguf';
SELECT is((SELECT count(*)::int FROM steadytext_generate_stream('hi', 8, false)), 0,
          'no model: an empty stream');

SELECT * FROM finish();
ROLLBACK;
