-- Rows in every table of the stand-in Python install, as its functions and worker left them.
-- tests/upgrade/run.sh checks each of them after the upgrade.

-- steadytext_config_set stored every value as a JSON string.
SELECT steadytext_config_set('default_max_tokens', '64');
SELECT steadytext_config_set('cache_eviction_enabled', 'false');
SELECT steadytext_config_set('default_seed', '-5');          -- refused by the new checks
SELECT steadytext_config_set('cron_host', 'db.internal');    -- a key the new version does not use
UPDATE steadytext_config SET updated_by = 'old_admin', updated_at = '2025-12-01 10:00+00'
WHERE key = 'default_max_tokens';

-- Queue rows as the Python functions and worker wrote them.
INSERT INTO steadytext_queue (id, request_id, request_type, prompt, params, status, result, created_at, started_at, completed_at, user_id, retry_count) VALUES
    (1, '00000000-0000-0000-0000-000000000001', 'generate', 'Write one sentence about tea.', '{"max_tokens": 16, "use_cache": true, "seed": 42}', 'pending', NULL, '2025-12-01 10:00+00', NULL, NULL, NULL, 0),
    (2, '00000000-0000-0000-0000-000000000002', 'embed', NULL, '{"text_input": "green tea", "use_cache": true, "seed": 42, "unsafe_mode": false}', 'pending', NULL, '2025-12-01 10:01+00', NULL, NULL, NULL, 0),
    (3, '00000000-0000-0000-0000-000000000003', 'generate', 'Name a river.', '{"max_tokens": 8, "use_cache": true, "seed": 42}', 'processing', NULL, '2025-12-01 10:02+00', '2025-12-01 10:03+00', NULL, 'alice', 0),
    (4, '00000000-0000-0000-0000-000000000004', 'generate', 'Say hi.', '{"max_tokens": 4, "use_cache": true, "seed": 42}', 'completed', 'Hi there!', '2025-12-01 09:00+00', '2025-12-01 09:00+00', '2025-12-01 09:01+00', 'alice', 0),
    (5, '00000000-0000-0000-0000-000000000005', 'rerank', NULL, '{"query": "tea", "documents": ["green tea", "coffee"], "task": "t", "return_scores": true, "seed": 42}', 'failed', NULL, '2025-12-01 09:00+00', '2025-12-01 09:00+00', '2025-12-01 09:02+00', 'bob', 1),
    (6, '00000000-0000-0000-0000-000000000006', 'generate', 'Cancelled one.', '{"max_tokens": 4}', 'cancelled', NULL, '2025-12-01 09:00+00', NULL, '2025-12-01 09:03+00', 'bob', 0),
    -- Any role could write this table: a pending request naming a model file by path.
    (7, '00000000-0000-0000-0000-000000000007', 'embed', 'x', '{"model": "/etc/ssl/private/key.gguf"}', 'pending', NULL, '2025-12-01 09:00+00', NULL, NULL, 'mallory', 0);
UPDATE steadytext_queue SET error = 'RuntimeError: Failed to load reranking model' WHERE id = 5;
-- The worker had used ids up to 9 (rows 7 to 9 were deleted since).
SELECT setval('steadytext_queue_id_seq', 9);

-- Cache rows keyed the Python way: the prompt alone, and sha256('embed:' || text).
INSERT INTO steadytext_cache (cache_key, prompt, response, model_name, generation_params) VALUES
    ('Write one sentence about tea.', 'Write one sentence about tea.', 'Tea is nice.', 'steadytext-default', '{"max_tokens": 512, "seed": 42}'),
    ('Say hi.', 'Say hi.', 'Hi there!', 'steadytext-default', '{"max_tokens": 4, "seed": 42}');
INSERT INTO steadytext_cache (cache_key, prompt, embedding)
VALUES (encode(sha256('embed:green tea'), 'hex'), 'green tea', array_fill(0.5, ARRAY[1024])::vector);

UPDATE steadytext_daemon_health SET status = 'healthy', version = '2025.10.30', models_loaded = '{gemma-3n}', total_requests = 1234
WHERE daemon_id = 'default';
INSERT INTO steadytext_daemon_health (daemon_id, endpoint, status) VALUES ('gpu-box', 'tcp://10.0.0.2:5555', 'unhealthy');

INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour, requests_per_day, current_minute_count)
VALUES ('alice', 10, 100, 1000, 3), ('bob', 60, 1000, 10000, 0);

INSERT INTO steadytext_audit_log (event_type, user_id, details, success, error_message)
VALUES ('cache_eviction', 'postgres', '{"evicted_count": 2, "eviction_type": "age_based"}', true, NULL),
       ('daemon_start', 'alice', NULL, false, 'Daemon is already running');

INSERT INTO steadytext_prompts (id, slug, description, created_by) VALUES
    ('10000000-0000-0000-0000-000000000001', 'greeting', 'Says hello', 'alice'),
    ('10000000-0000-0000-0000-000000000002', 'summary-en', NULL, 'bob');
INSERT INTO steadytext_prompt_versions (id, prompt_id, version, template, required_variables, is_active) VALUES
    ('20000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', 1, 'Hello {{ name }}', '{name}', false),
    ('20000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-000000000001', 2, 'Hello {{ name }}!', '{name}', true),
    -- The Python registry's index did not prevent two active versions.
    ('20000000-0000-0000-0000-000000000003', '10000000-0000-0000-0000-000000000002', 1, 'Summarize: {{ text }}', '{text}', true),
    ('20000000-0000-0000-0000-000000000004', '10000000-0000-0000-0000-000000000002', 2, 'Summarize briefly: {{ text }}', '{text}', true);
