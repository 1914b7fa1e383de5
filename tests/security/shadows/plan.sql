-- What the shadows are generated from, read off a clean install of the extension (database
-- `ref`, as a superuser): every operator and function name the extension's SQL uses (function
-- bodies, views, defaults, constraints, policies, indexes, triggers, and the SQL the Rust
-- functions send through SPI, loaded into public.plan_rust_sql by shadows.sh), the types its tables and
-- functions use, and the signatures of its own functions that its SQL calls by name.
-- shadows.sh copies the plan_* tables into each database it attacks. Types are written as
-- format_type writes them outside their schema's search path (public.vector).
SET search_path = pg_catalog, pg_temp;

CREATE TABLE public.plan_sources (src text);
INSERT INTO public.plan_sources
SELECT p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE l.lanname IN ('sql', 'plpgsql') AND p.oid IN (
    SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext'));
CREATE TEMP VIEW members AS
    SELECT d.objid AS oid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
      AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext');
INSERT INTO public.plan_sources SELECT pg_get_viewdef(c.oid) FROM pg_class c WHERE c.oid IN (SELECT oid FROM members) AND c.relkind = 'v';
INSERT INTO public.plan_sources SELECT pg_get_expr(a.adbin, a.adrelid) FROM pg_attrdef a WHERE a.adrelid IN (SELECT oid FROM members);
INSERT INTO public.plan_sources SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid IN (SELECT oid FROM members);
INSERT INTO public.plan_sources SELECT concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM members);
INSERT INTO public.plan_sources SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM members);
INSERT INTO public.plan_sources SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM members) AND NOT t.tgisinternal;
INSERT INTO public.plan_sources SELECT src FROM public.plan_rust_sql;
-- Without comments and string literals, whose words are neither names nor operators.
UPDATE public.plan_sources SET src = regexp_replace(regexp_replace(src, '--[^\n]*', ' ', 'g'), '''([^'']|'''')*''', ' ''s'' ', 'g');

-- Operator names: written as OPERATOR(schema.op) or bare, that pg_catalog or pgvector defines.
CREATE TABLE public.plan_ops AS
SELECT DISTINCT o.oprname AS name
FROM public.plan_sources s,
     LATERAL regexp_matches(s.src, '(?:OPERATOR\(\s*[a-z_@]+\.([^)\s]+)\s*\)|([-+*/<>=~!@#%^&|`?]+))', 'g') m,
     pg_operator o
WHERE o.oprname = coalesce(m[1], m[2]) AND o.oprnamespace IN ('pg_catalog'::regnamespace, 'public'::regnamespace);

-- Function names called (a name before "("), that pg_catalog or the extension defines.
CREATE TABLE public.plan_funcs AS
SELECT DISTINCT lower(m[1]) AS name
FROM public.plan_sources s, LATERAL regexp_matches(s.src, '([A-Za-z_][A-Za-z0-9_]*)\s*\(', 'g') m
WHERE EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = lower(m[1])
                AND p.pronamespace IN ('pg_catalog'::regnamespace, 'public'::regnamespace));

-- The argument types to try: every type the extension's columns and functions use, and the
-- built-in types a literal or an expression commonly has.
CREATE TABLE public.plan_types AS
SELECT DISTINCT format_type(t.oid, NULL) AS t FROM pg_type t
WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm') AND t.typname NOT IN ('unknown', 'cstring') AND (
      t.oid IN (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM members) AND a.attnum > 0)
   OR t.oid IN (SELECT unnest(p.proargtypes::oid[] || p.prorettype) FROM pg_proc p WHERE p.oid IN (
          SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
            AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext')))
   OR t.oid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype, 'float8'::regtype,
                'numeric'::regtype, 'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype,
                'bool'::regtype, 'json'::regtype, 'jsonb'::regtype, 'uuid'::regtype, 'timestamptz'::regtype,
                'timestamp'::regtype, 'interval'::regtype, 'date'::regtype, 'bytea'::regtype, 'oid'::regtype,
                'regclass'::regtype, '"char"'::regtype, 'text[]'::regtype, 'int4[]'::regtype));

-- The extension's own functions that its SQL calls by name (schema-qualified calls resolve among
-- every function of that name in the schema, a role's included).
CREATE TABLE public.plan_own AS
SELECT p.proname::text AS name, ARRAY(SELECT format_type(a, NULL) FROM unnest(p.proargtypes::oid[]) a) AS args,
       pg_get_function_result(p.oid) AS result
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f' AND p.proname IN (SELECT name FROM public.plan_funcs)
  AND p.oid IN (SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
                  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext'));
DELETE FROM public.plan_funcs f WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = f.name AND p.pronamespace = 'pg_catalog'::regnamespace);
