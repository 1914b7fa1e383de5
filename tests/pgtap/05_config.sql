-- steadytext_config_get/set: JSONB values, validation texts, audit rows.
BEGIN;
SELECT plan(19);

SELECT is(steadytext_config_get('daemon_host'), 'localhost', 'get returns the unquoted value');
SELECT is(steadytext_config_get('default_max_tokens'), '512', 'numbers come back as text');
SELECT is(steadytext_config_get('no_such_key'), NULL, 'an absent key is NULL');
SELECT is(steadytext_config_get(NULL), NULL, 'STRICT: NULL in, NULL out');

DO $$ BEGIN PERFORM steadytext_config_set('daemon_port', '6000'); END $$;
SELECT is((SELECT value FROM steadytext_config WHERE key = 'daemon_port'), '"6000"'::jsonb,
          'set stores the value as a JSON string, as the Python extension did');
SELECT is(steadytext_config_get('daemon_port'), '6000', 'and get reads it back');
SELECT is((SELECT updated_by FROM steadytext_config WHERE key = 'daemon_port'), current_user::text, 'updated_by is stamped');
SELECT ok((SELECT details @> '{"key": "daemon_port", "value": "6000", "operation": "update"}'
           FROM steadytext_audit_log WHERE event_type = 'config_change' ORDER BY id DESC LIMIT 1),
          'an audit row records the change');
SELECT lives_ok($$SELECT steadytext_config_set(NULL, 'x')$$, 'STRICT: NULL is a no-op');

SELECT throws_ok($$SELECT steadytext_config_set('daemon_host', 'bad host;rm')$$, 'P0001', 'Invalid host format');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_port', '70000')$$, 'P0001', 'Invalid port format');
SELECT throws_ok($$SELECT steadytext_config_set('DAEMON_PORT', 'abc')$$, 'P0001', 'Invalid port format');
SELECT throws_ok($$SELECT steadytext_config_set('model_path', '/etc/passwd')$$, 'P0001', 'Invalid file path');
SELECT throws_ok($$SELECT steadytext_config_set('daemon_command', 'st daemon')$$, 'P0001', 'Invalid command format');
SELECT throws_ok($$SELECT steadytext_config_set('queue_table_name', 'x; drop')$$, 'P0001', 'Invalid table name');
SELECT throws_ok($$UPDATE steadytext_config SET value = '"-3"' WHERE key = 'default_seed'$$, 'P0001',
                 'default_seed must be a whole number of at least 0, got ''-3''',
                 'a plain UPDATE is checked as steadytext_config_set is');
SELECT is(st_config_get('daemon_host'), steadytext_config_get('daemon_host'), 'st_config_get is an alias');

-- default_seed applies where a call passes a NULL seed, queued or not; a call without a seed
-- argument queues what the synchronous call uses, its signature's 42 (the rows stay invisible
-- to the workers: this file rolls back).
DO $$ BEGIN PERFORM steadytext_config_set('default_seed', '7'); END $$;
SELECT steadytext_generate_async('Say hi', 8) AS plain \gset
SELECT steadytext_generate_regex_async('Say hi', '[a-z]+', 8, true, NULL) AS structured \gset
SELECT is((SELECT params->>'seed' FROM steadytext_queue WHERE request_id = :'plain'), '42',
          'steadytext_generate_async queues steadytext_generate(prompt, max_tokens)''s seed');
SELECT is((SELECT params->>'seed' FROM steadytext_queue WHERE request_id = :'structured'), '7',
          'a structured *_async call with a NULL seed queues the default_seed row');

SELECT * FROM finish();
ROLLBACK;
