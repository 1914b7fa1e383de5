-- Structured generation and reranking through SQL: outputs that satisfy their constraint,
-- determinism (calls, connections, daemon and backend), every error text, the JSON tags
-- setting, reranking's forms and its flagged fallback, and what the *_async forms queue.
BEGIN;
SELECT plan(56);

-- JSON
CREATE TEMP TABLE person AS SELECT steadytext_generate_json('Give a person''s name and age',
    '{"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
      "age": {"type": "integer", "minimum": 0, "maximum": 120}},
      "required": ["name", "age"], "additionalProperties": false}', 128, false) AS out;
SELECT ok((SELECT out::jsonb ?& ARRAY['name', 'age'] FROM person), 'generate_json gives JSON with the required keys');
SELECT is((SELECT jsonb_typeof(out::jsonb -> 'age') FROM person), 'number', 'of the schema''s types');
SELECT ok((SELECT (out::jsonb ->> 'age')::int BETWEEN 0 AND 120 FROM person), 'within the bounds');
SELECT is(jsonb_typeof(steadytext_generate_json('Is the sky blue?', '{"type": "boolean"}', 16, false)::jsonb), 'boolean',
          'a boolean schema gives a JSON boolean');
SELECT ok(steadytext_generate_json('Is the sky blue?', '{"type": "boolean"}', 16, false) IN ('true', 'false'), 'true or false');
SELECT test_helpers.same((SELECT out FROM person),
          steadytext_generate_json('Give a person''s name and age',
    '{"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
      "age": {"type": "integer", "minimum": 0, "maximum": 120}},
      "required": ["name", "age"], "additionalProperties": false}', 128, false), 'the same bytes on a second call');
SET LOCAL steadytext.json_output_tags = on;
SELECT ok(steadytext_generate_json('Is the sky blue?', '{"type": "boolean"}', 16, false) ~ '^<json-output>(true|false)</json-output>$',
          'steadytext.json_output_tags restores the Python extension''s tags');
RESET steadytext.json_output_tags;
SELECT throws_ok($$SELECT steadytext_generate_json(NULL, '{}')$$, 'P0001', 'Prompt cannot be null');
SELECT throws_ok($$SELECT steadytext_generate_json(' ', '{}')$$, 'P0001', 'Prompt cannot be empty');
SELECT throws_ok($$SELECT steadytext_generate_json('x', NULL)$$, 'P0001', 'Schema cannot be null');
SELECT throws_like($$SELECT steadytext_generate_json('x', '{"type": "no-such-type"}')$$, 'Invalid JSON schema:%',
                   'an unknown type is an invalid schema');
SELECT throws_like($$SELECT steadytext_generate_json('x', '[1, 2]')$$, 'Invalid JSON schema:%', 'so is an array');
SELECT throws_ok($$SELECT steadytext_generate_json('x', '{}', model => 'openai:gpt-4o')$$, 'P0001',
                 'Remote models (containing '':'' ) require unsafe_mode=TRUE');
SELECT throws_like($$SELECT steadytext_generate_json('Give a person', '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}', 2, false)$$,
                 'the constrained output needs at least % tokens but max_tokens allows 2; raise max_tokens',
                 'a budget smaller than the shortest valid output is an error naming that length');
SELECT throws_ok($$SELECT steadytext_generate_json('Give a person', '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}', 2, false)$$,
                 '54000', NULL, 'with SQLSTATE 54000');
-- Within any budget at least that length, the output is complete and valid: nested objects,
-- arrays and long strings are steered to a short valid ending, never cut.
CREATE TEMP TABLE nested AS SELECT b, steadytext_generate_json('Describe a library with its books in detail',
    '{"type": "object", "properties": {"name": {"type": "string"}, "address": {"type": "object", "properties":
      {"street": {"type": "string"}, "city": {"type": "string"}}, "required": ["street", "city"]},
      "books": {"type": "array", "items": {"type": "object", "properties": {"title": {"type": "string"},
      "year": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
      "required": ["title", "year", "tags"]}}}, "required": ["name", "address", "books"]}', b, false) AS out
    FROM unnest(ARRAY[40, 80, 200]) AS b;
SELECT ok((SELECT coalesce(bool_and(out::jsonb ?& ARRAY['name', 'address', 'books']
                           AND out::jsonb -> 'address' ?& ARRAY['street', 'city']
                           AND jsonb_typeof(out::jsonb -> 'books') = 'array'), false) FROM nested),
          'a nested schema at max_tokens 40, 80 and 200 always gives JSON with every required key');
SELECT ok((SELECT bool_and(NOT EXISTS (SELECT 1 FROM jsonb_array_elements(out::jsonb -> 'books') bk
                                       WHERE NOT (bk ?& ARRAY['title', 'year', 'tags'])
                                          OR jsonb_typeof(bk -> 'year') <> 'number'
                                          OR jsonb_typeof(bk -> 'tags') <> 'array')) FROM nested),
          'and every array element validates');

-- Regex
SELECT ok(steadytext_generate_regex('A phone number', '[0-9]{3}-[0-9]{3}-[0-9]{4}', 32, false) ~ '^[0-9]{3}-[0-9]{3}-[0-9]{4}$',
          'generate_regex matches the pattern in full');
SELECT ok(steadytext_generate_regex('A colour', '(red|green|blue)', 8, false) IN ('red', 'green', 'blue'), 'alternation');
SELECT ok(steadytext_generate_regex('Say it', '(café|thé) au lait', 16, false) ~ '^(café|thé) au lait$', 'non-ASCII literals');
SELECT throws_ok($$SELECT steadytext_generate_regex('x', NULL)$$, 'P0001', 'Pattern cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_generate_regex('x', '')$$, 'P0001', 'Pattern cannot be null or empty', 'empty too');
SELECT throws_like($$SELECT steadytext_generate_regex('x', '(a)\1')$$, '%backreferences%', 'a backreference is named');
SELECT throws_like($$SELECT steadytext_generate_regex('x', 'a(?=b)')$$, '%look-around%', 'so is look-around');
SELECT throws_like($$SELECT steadytext_generate_regex('x', '\bword')$$, '%word boundaries%', 'and word boundaries');
SELECT throws_ok($$SELECT steadytext_generate_regex('x', 'a{100000}')$$, '54000',
                 'Invalid regex pattern: repetition count 100000 is more than the limit of 1000',
                 'a repetition count beyond the limit');
SELECT throws_like($$SELECT steadytext_generate_regex('x', '[')$$, 'Invalid regex pattern:%', 'a syntax error');

-- Choice
SELECT ok(steadytext_generate_choice('Pick one', ARRAY['say "yes"', 'back\slash', 'it''s'], 16, false)
          = ANY(ARRAY['say "yes"', 'back\slash', 'it''s']), 'a choice with quotes and backslashes comes back exactly');
SELECT ok(steadytext_generate_choice('Pick one', ARRAY['café', '日本語', 'Ünïcödé'], 16, false)
          = ANY(ARRAY['café', '日本語', 'Ünïcödé']), 'non-ASCII choices too');
SELECT test_helpers.same(steadytext_generate_choice('Is the sky blue?', ARRAY['yes', 'no'], 8, false),
          st_generate_choice('Is the sky blue?', ARRAY['yes', 'no'], 8, false), 'the alias gives the same answer');
SELECT throws_ok($$SELECT steadytext_generate_choice('x', NULL)$$, 'P0001', 'Choices cannot be null or empty');
SELECT throws_ok($$SELECT steadytext_generate_choice('x', '{}')$$, 'P0001', 'Choices cannot be null or empty', 'empty too');
SELECT throws_ok($$SELECT steadytext_generate_choice('x', ARRAY['a'])$$, 'P0001', 'Must provide at least 2 choices');
SELECT throws_ok($$SELECT steadytext_generate_choice('x', ARRAY['a', 'a'])$$, 'P0001', 'Duplicate choice: a');
SELECT throws_ok($$SELECT steadytext_generate_choice('x', ARRAY['a', NULL])$$, 'P0001', 'Choices cannot contain null elements');

-- Determinism: another connection, and the backend instead of the daemon
SELECT test_helpers.same((SELECT t FROM dblink('dbname=' || current_database() || ' host=' || current_setting('unix_socket_directories')
                                || ' port=' || current_setting('port'),
          $$SELECT steadytext_generate_regex('A phone number', '[0-9]{3}-[0-9]{3}-[0-9]{4}', 32, false)$$) AS r(t text)),
          steadytext_generate_regex('A phone number', '[0-9]{3}-[0-9]{3}-[0-9]{4}', 32, false),
          'another connection gets the same bytes');
-- no silent fallback to the backend: this side must come from the daemon
SET LOCAL steadytext.inprocess_fallback = off;
CREATE TEMP TABLE via_daemon AS SELECT
    steadytext_generate_json('Describe a book', '{"type": "object", "properties": {"title": {"type": "string", "maxLength": 30}, "pages": {"type": "integer"}}, "required": ["title", "pages"]}', 96, false) AS j,
    (SELECT array_agg(document || ':' || score ORDER BY score DESC) FROM steadytext_rerank('bread', ARRAY['Bake bread with flour', 'Cars need fuel'])) AS r;
RESET steadytext.inprocess_fallback;
SET LOCAL steadytext.use_daemon = off;
CREATE TEMP TABLE in_backend AS SELECT
    steadytext_generate_json('Describe a book', '{"type": "object", "properties": {"title": {"type": "string", "maxLength": 30}, "pages": {"type": "integer"}}, "required": ["title", "pages"]}', 96, false) AS j,
    (SELECT array_agg(document || ':' || score ORDER BY score DESC) FROM steadytext_rerank('bread', ARRAY['Bake bread with flour', 'Cars need fuel'])) AS r;
RESET steadytext.use_daemon;
SELECT test_helpers.same((SELECT j FROM in_backend), (SELECT j FROM via_daemon), 'daemon and backend give the same JSON');
SELECT test_helpers.same((SELECT r FROM in_backend), (SELECT r FROM via_daemon), 'and the same rerank scores');

-- Reranking
CREATE TEMP TABLE ranked AS SELECT * FROM steadytext_rerank('What is PostgreSQL?',
    ARRAY['PostgreSQL is a relational database.', 'Bananas are yellow.', 'A violin has four strings.']);
SELECT is((SELECT count(*)::int FROM ranked), 3, 'rerank returns every document');
SELECT ok((SELECT bool_and(score > 0 AND score < 1) FROM ranked), 'with continuous scores in (0, 1), not 0/1');
SELECT ok((SELECT count(DISTINCT score) = 3 FROM ranked), 'one per document');
SELECT is((SELECT array_agg(document) FROM steadytext_rerank('What is PostgreSQL?',
    ARRAY['PostgreSQL is a relational database.', 'Bananas are yellow.', 'A violin has four strings.'])),
          (SELECT array_agg(document ORDER BY score DESC) FROM ranked), 'rows come best first');
SELECT is((SELECT array_agg(score) FROM steadytext_rerank('What is PostgreSQL?', ARRAY['Bananas are yellow.'], return_scores => false)),
          ARRAY[NULL::float8], 'return_scores false leaves the score NULL');
SELECT is((SELECT array_agg(document) FROM steadytext_rerank_docs_only('What is PostgreSQL?',
    ARRAY['PostgreSQL is a relational database.', 'Bananas are yellow.', 'A violin has four strings.'])),
          (SELECT array_agg(document ORDER BY score DESC) FROM ranked), 'docs_only keeps the order');
SELECT is((SELECT array_agg(document) FROM st_rerank_top_k('What is PostgreSQL?',
    ARRAY['PostgreSQL is a relational database.', 'Bananas are yellow.', 'A violin has four strings.'], 2)),
          (SELECT (array_agg(document ORDER BY score DESC))[1:2] FROM ranked), 'top_k keeps the best k');
SELECT throws_ok($$SELECT * FROM steadytext_rerank_top_k('q', ARRAY['a'], 0)$$, 'P0001', 'top_k must be greater than 0');
SELECT results_eq($$SELECT query_index, count(*)::int FROM steadytext_rerank_batch(ARRAY['cats', 'cars'], ARRAY['a', 'b']) GROUP BY 1 ORDER BY 1$$,
                  $$VALUES (0, 2), (1, 2)$$, 'rerank_batch ranks every query, 0-based');
SELECT is_empty($$SELECT * FROM steadytext_rerank_batch(ARRAY['q'], '{}')$$, 'with no documents, no rows');
SELECT throws_ok($$SELECT * FROM steadytext_rerank_batch('{}', ARRAY['a'])$$, 'P0001', 'Queries cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_rerank(NULL, ARRAY['a'])$$, 'P0001', 'Query cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_rerank(' ', ARRAY['a'])$$, 'P0001', 'Query cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', NULL)$$, 'P0001', 'Documents cannot be null');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', '{}')$$, 'P0001', 'Documents array cannot be empty');
SELECT throws_ok($$SELECT * FROM steadytext_rerank('q', ARRAY['a', NULL])$$, 'P0001', 'Documents cannot contain null elements');
SET LOCAL steadytext.reranking_model = '/nonexistent/reranker.gguf';
SELECT results_eq($$SELECT document, score FROM steadytext_rerank('red apple', ARRAY['a green pear', 'one red apple', 'red car'])$$,
                  $$VALUES ('one red apple', 1.0::float8), ('red car', 0.5), ('a green pear', 0.0)$$,
                  'without a model: the word-overlap fallback (with a WARNING saying so)');
RESET steadytext.reranking_model;

-- Ranking quality, on the reranking fixture next to the generation model (SmolLM2 cannot judge
-- relevance): each query's one relevant document among the others' comes first.
SELECT set_config('steadytext.reranking_model',
    regexp_replace(current_setting('steadytext.generation_model'), '[^/]+$', 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'), true);
CREATE TEMP TABLE labelled AS SELECT * FROM steadytext_rerank_batch(
    ARRAY['Who wrote Hamlet?', 'How do cats purr?', 'Which fruit is rich in potassium?'],
    ARRAY['Bananas are a good source of potassium.', 'Hamlet is a tragedy written by William Shakespeare.',
          'Cats purr by vibrating the muscles of their larynx.']);
SELECT results_eq($$SELECT DISTINCT ON (query_index) query_index, document FROM labelled ORDER BY query_index, score DESC$$,
                  $$VALUES (0, 'Hamlet is a tragedy written by William Shakespeare.'),
                           (1, 'Cats purr by vibrating the muscles of their larynx.'),
                           (2, 'Bananas are a good source of potassium.')$$,
                  'a reranking model puts each query''s relevant document first');
RESET steadytext.reranking_model;

SELECT * FROM finish();
ROLLBACK;
