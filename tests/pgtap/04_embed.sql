-- steadytext_embed and friends: width, norm, determinism, semantics, errors, the cache write
-- path, and a generated column with an HNSW index.
BEGIN;
SELECT plan(23);

SELECT is(vector_dims(steadytext_embed('hello')), 1024, '1024 dimensions');
SELECT ok(abs(vector_norm(steadytext_embed('hello')) - 1) < 1e-5, 'unit norm');
SELECT test_helpers.same(steadytext_embed('hello', false), steadytext_embed('hello', false), 'deterministic');
-- SteadyText ignores the seed for local embeddings (so it is in no cache key either)
SELECT test_helpers.same(steadytext_embed('hello', false, 1), steadytext_embed('hello', false, 2), 'the seed does not change embeddings');
SELECT ok(steadytext_embed('cat') <=> steadytext_embed('kitten') < steadytext_embed('cat') <=> steadytext_embed('car'),
          'cat is closer to kitten than to car');
SELECT ok(steadytext_embed('How do I bake bread?') <=> steadytext_embed('Bread baking instructions')
          < steadytext_embed('How do I bake bread?') <=> steadytext_embed('Car engine repair'),
          'questions are closer to their answers');

SET LOCAL steadytext.embedding_mode = 'passage';
CREATE TEMP TABLE passage AS SELECT steadytext_embed('hello', false) AS v;
RESET steadytext.embedding_mode;
SELECT isnt((SELECT v FROM passage), steadytext_embed('hello', false), 'steadytext.embedding_mode changes the prefix');

SELECT throws_ok($$SELECT steadytext_embed(NULL)$$, 'P0001', 'Text cannot be null');
SELECT throws_ok($$SELECT steadytext_embed('  ')$$, 'P0001', 'Text cannot be empty');
SELECT throws_ok($$SELECT steadytext_embed('x', model => 'openai:text-embedding-3-small')$$,
                 'P0001', 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_ok($$SELECT steadytext_embed_cached('x', model => 'voyageai:voyage-3')$$,
                 'P0001', 'Remote models (containing '':'' ) require unsafe_mode=TRUE');

SET LOCAL steadytext.embedding_model = '/nonexistent/model.gguf';
SELECT is(steadytext_embed('hello', false), array_fill(0, ARRAY[1024])::vector, 'no model: the zero vector, never NULL');
RESET steadytext.embedding_model;

-- batch: one row per input, each bit-identical to embedding it alone
SELECT is((SELECT count(*)::int FROM steadytext_embed_batch(ARRAY['a cat', 'a dog', 'stocks'])), 3, 'one row per text');
SELECT test_helpers.same((SELECT embedding FROM steadytext_embed_batch(ARRAY['a cat', 'a dog', 'stocks']) WHERE index = 2),
          steadytext_embed('a dog', false), 'batch equals single');
SELECT is((SELECT embedding FROM steadytext_embed_batch(ARRAY['x', NULL]) WHERE index = 2),
          array_fill(0, ARRAY[1024])::vector, 'a NULL element gives the zero vector');
SELECT throws_ok($$SELECT * FROM steadytext_embed_batch(NULL)$$, 'P0001', 'Texts cannot be null');

-- the _cached write path
SELECT test_helpers.same(steadytext_embed_cached('write me'), steadytext_embed('write me', false), '_cached returns the embedding');
SELECT is((SELECT count(*)::int FROM steadytext_cache WHERE prompt = 'write me' AND embedding IS NOT NULL), 1,
          '_cached writes one row');
DO $$ BEGIN PERFORM steadytext_embed_cached('write me'); END $$;
SELECT is((SELECT access_count FROM steadytext_cache WHERE prompt = 'write me'), 2, 'a hit counts an access');
UPDATE steadytext_cache SET embedding = array_fill(0.5, ARRAY[1024])::vector WHERE prompt = 'write me';
SELECT is(steadytext_embed('write me'), array_fill(0.5, ARRAY[1024])::vector, 'use_cache reads the row');

-- a generated column with an HNSW index answers nearest-neighbour queries
CREATE TABLE docs (
    id serial PRIMARY KEY,
    body text NOT NULL,
    embedding vector(1024) GENERATED ALWAYS AS (steadytext_embed(body)) STORED);
CREATE INDEX ON docs USING hnsw (embedding vector_cosine_ops);
INSERT INTO docs (body) VALUES
    ('PostgreSQL is a relational database'), ('Cats are small furry pets'),
    ('The stock market fell sharply today'), ('Bread is baked in an oven'),
    ('Football is played with a round ball'), ('The ocean is full of salt water');
SET LOCAL enable_seqscan = off;
SELECT ok((SELECT count(*) FROM docs WHERE embedding IS NOT NULL) = 6, 'the column is filled on insert');
SELECT is((SELECT body FROM docs ORDER BY embedding <=> steadytext_embed('kittens and other pets') LIMIT 1),
          'Cats are small furry pets', 'the nearest neighbour is the expected row');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || q LOOP plan := plan || line || E'\n'; END LOOP;
    RETURN plan;
END $$;
SELECT matches(pg_temp.plan_of($$SELECT body FROM docs ORDER BY embedding <=> steadytext_embed('kittens and other pets') LIMIT 1$$),
               'Index Scan using docs_embedding_idx', 'the HNSW index serves the query');
SELECT * FROM finish();
ROLLBACK;
