-- One statement per line that reads a view or calls a function or aggregate of pg_steadytext
-- with its required arguments, every argument a literal cast to its declared type (so that the
-- call itself resolves to the extension's function and to no shadow). Arguments by name where a
-- plain value of the type would stop the function early, else by type. Trigger functions and
-- those taking `internal` are run by PostgreSQL, not called. Run with search_path as a user has
-- it ("$user", public), as a superuser, after create.sql made the shadows.
SET search_path = pg_catalog, pg_temp;
WITH values_by_name(name, literal) AS (VALUES
    ('schema', '{"type": "string", "maxLength": 8}'), ('pattern', '[a-z]{3}'),
    ('choices', '{yes,no}'), ('grammar', 'start: "yes" | "no"'), ('template', 'Hi {{ who }}'),
    ('variables', '{"who": "you"}'), ('slug', 'shadow-test'), ('config_key', 'default_max_tokens'),
    ('key', 'default_max_tokens'), ('config_value', '100'), ('value', '100'),
    ('documents', '{Bake bread,Fuel cars}'), ('query', 'bread'), ('queries', '{bread}'),
    ('worker', 'shadow-worker'), ('timeout_seconds', '1'), ('max_tokens', '4'),
    ('facts', '["a fact", "another fact"]'), ('entries', '[]'), ('job_id', '1')),
values_by_type(type, literal) AS (VALUES
    ('text', 'Say hi'), ('integer', '4'), ('bigint', '4'), ('smallint', '4'), ('double precision', '0.5'),
    ('real', '0.5'), ('numeric', '0.5'), ('boolean', 'false'), ('jsonb', '{}'), ('json', '{}'),
    ('uuid', '00000000-0000-4000-8000-000000000001'), ('text[]', '{Say hi,Bake bread}'),
    ('uuid[]', '{00000000-0000-4000-8000-000000000001}'), ('real[]', '{0.1,0.2}'),
    ('timestamp with time zone', 'now'), ('interval', '1 minute'), ('regclass', 'public.steadytext_cache'),
    ('public.vector', '[' || (SELECT string_agg('0.03', ',') FROM generate_series(1, 1024)) || ']'),
    ('public.vector[]', '{"[' || (SELECT string_agg('0.03', ',') FROM generate_series(1, 1024)) || ']"}')),
fns AS (
    SELECT p.oid, p.proname, p.prokind,
           p.pronargs - p.pronargdefaults AS required,
           ARRAY(SELECT unnest(p.proargtypes::oid[])) AS types, p.proargnames AS names
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext'
    WHERE p.prorettype <> 'trigger'::regtype AND NOT 'internal'::regtype::oid = ANY (p.proargtypes::oid[])),
args AS (
    SELECT f.oid, string_agg(
               format('%L::%s', coalesce((SELECT v.literal FROM values_by_name v WHERE v.name = f.names[i]),
                                         (SELECT v.literal FROM values_by_type v WHERE v.type = format_type(f.types[i], NULL)),
                                         'x'),
                      format_type(f.types[i], NULL)),
               ', ' ORDER BY i) AS list
    FROM fns f, generate_series(1, f.required) i GROUP BY f.oid)
SELECT CASE WHEN f.prokind = 'a'
            THEN format('SELECT public.%I(%s) FROM generate_series(1, 2);', f.proname, coalesce(a.list, ''))
            ELSE format('SELECT public.%I(%s);', f.proname, coalesce(a.list, '')) END
FROM fns f LEFT JOIN args a ON a.oid = f.oid
UNION ALL
SELECT format('SELECT v::text FROM public.%I v;', c.relname)
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext'
WHERE c.relkind = 'v';
