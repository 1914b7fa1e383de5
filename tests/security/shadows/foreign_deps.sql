-- The objects of pg_steadytext (its members and what belongs to them: defaults, constraints,
-- indexes, policies, triggers, views' rules) that depend on an object outside pg_catalog that
-- belongs to no extension, one per line: what PostgreSQL bound at install or upgrade time to
-- something a role created.
WITH RECURSIVE owned AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_steadytext')
    UNION
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
    JOIN owned o ON d.refclassid = o.classid AND d.refobjid = o.objid AND d.deptype IN ('a', 'i')
)
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
       || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
FROM owned o
JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'n',
     LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0) i
WHERE NOT EXISTS (SELECT 1 FROM owned x WHERE x.classid = d.refclassid AND x.objid = d.refobjid)
  -- a member of an extension, or part of one (an array type is internal to its element type)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = d.refclassid AND e.objid = d.refobjid AND (e.deptype = 'e'
                        OR (e.deptype = 'i' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend m
                              WHERE m.classid = e.refclassid AND m.objid = e.refobjid AND m.deptype = 'e'))))
  AND i.schema IS DISTINCT FROM 'pg_catalog'
  AND d.refclassid <> 'pg_catalog.pg_namespace'::pg_catalog.regclass
ORDER BY 1;
