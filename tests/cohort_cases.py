"""Cohorts for the allow-list tests: hostile or broken ones with the exact reason
each is refused for, and realistic ones an operator writes, which must be
accepted and match exactly what the same WHERE clause matches in plain SQL.

Shared by the unit suite (the checker alone) and the integration suite (the
same texts saved as campaigns and run by execute, dry-run and list).
"""

from __future__ import annotations

# (id, cohort text, message after "campaign '<name>': ")
HOSTILE = [
    ("empty", "", "cohort is empty"),
    ("blank", "   \n\t", "cohort is empty"),
    ("only-a-comment", "-- country = 'DE'", "cohort has no expression, only comments"),
    (
        "stacked-drop",
        "true; DROP TABLE user_data",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "stacked-sleep",
        "true; SELECT pg_sleep(10)",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "stacked-update",
        "country = 'DE'; UPDATE user_data SET email_consent = true",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "trailing-semicolon",
        "country = 'DE';",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "escape-parentheses",
        "true) OR (true",
        'cohort is not valid SQL: syntax error at or near ")" (position 5)',
    ),
    (
        "unbalanced-open",
        "(country = 'DE'",
        "cohort is not valid SQL: syntax error at end of input",
    ),
    (
        "unbalanced-close",
        "country = 'DE')",
        'cohort is not valid SQL: syntax error at or near ")" (position 15)',
    ),
    (
        "unterminated-comment",
        "true /* DROP TABLE user_data",
        'cohort is not valid SQL: unterminated /* comment at or near "/* DROP TABLE user_data" (position 6)',
    ),
    (
        "comment-then-function",
        "true /* harmless */ OR pg_sleep(10) IS NULL",
        "function pg_sleep is not allowed (position 24)",
    ),
    (
        "line-comment-then-function",
        "true -- harmless\nOR pg_sleep(10) IS NULL",
        "function pg_sleep is not allowed (position 21)",
    ),
    (
        "dollar-quote-then-function",
        "$$a$$ = $$a$$ OR pg_sleep(10) IS NULL",
        "function pg_sleep is not allowed (position 18)",
    ),
    (
        "dollar-quote-then-statement",
        "country = $q$DE$q$; DELETE FROM user_data",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "unterminated-dollar-quote",
        "country = $$DE",
        'cohort is not valid SQL: unterminated dollar-quoted string at or near "$$DE" (position 11)',
    ),
    (
        "quoted-semicolon-then-statement",
        "country = ';'; DELETE FROM user_data",
        "cohort must be one expression; remove the ';'",
    ),
    (
        "exists-shadow",
        "EXISTS (SELECT 1 FROM pg_shadow)",
        "a sub-query is not allowed (position 1)",
    ),
    (
        "in-other-table",
        "id IN (SELECT id FROM campaigns)",
        "a sub-query is not allowed (position 4)",
    ),
    (
        "scalar-catalog",
        "(SELECT count(*) FROM pg_authid) > 0",
        "a sub-query is not allowed (position 1)",
    ),
    (
        "any-subquery",
        "country = ANY (SELECT country FROM user_data)",
        "a sub-query is not allowed (position 9)",
    ),
    (
        "array-subquery",
        "ARRAY(SELECT usename FROM pg_user) IS NOT NULL",
        "a sub-query is not allowed (position 1)",
    ),
    (
        "writable-cte",
        "EXISTS (WITH gone AS (DELETE FROM user_data RETURNING 1) SELECT 1 FROM gone)",
        "a sub-query is not allowed (position 1)",
    ),
    (
        "union",
        "true UNION SELECT true",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "from-clause",
        "true FROM pg_shadow",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "locking-clause",
        "true FOR UPDATE",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "order-by",
        "true ORDER BY 1",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "second-column",
        "true, false",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "alias",
        "true AS x",
        "cohort must be one boolean expression (it may not add clauses such as FROM, ORDER BY or a second column)",
    ),
    (
        "pg-sleep",
        "pg_sleep(10) IS NOT NULL",
        "function pg_sleep is not allowed (position 1)",
    ),
    (
        "pg-sleep-qualified",
        "pg_catalog.pg_sleep(10) IS NULL",
        "function pg_catalog.pg_sleep is not allowed (position 1)",
    ),
    (
        "pg-sleep-unicode-escape",
        'U&"pg_sleep"(10) IS NULL',
        "function pg_sleep is not allowed (position 1)",
    ),
    (
        "pg-sleep-for",
        "pg_sleep_for('10 seconds') IS NULL",
        "function pg_sleep_for is not allowed (position 1)",
    ),
    (
        "read-file",
        "pg_read_file('/etc/passwd') IS NOT NULL",
        "function pg_read_file is not allowed (position 1)",
    ),
    (
        "read-binary-file",
        "pg_read_binary_file('/etc/passwd') IS NOT NULL",
        "function pg_read_binary_file is not allowed (position 1)",
    ),
    (
        "list-directory",
        "pg_ls_dir('.') IS NOT NULL",
        "function pg_ls_dir is not allowed (position 1)",
    ),
    (
        "stat-file",
        "pg_stat_file('postgresql.conf') IS NOT NULL",
        "function pg_stat_file is not allowed (position 1)",
    ),
    (
        "set-config",
        "set_config('statement_timeout', '0', false) IS NOT NULL",
        "function set_config is not allowed (position 1)",
    ),
    (
        "current-setting",
        "current_setting('data_directory') IS NOT NULL",
        "function current_setting is not allowed (position 1)",
    ),
    (
        "cancel-backend",
        "pg_cancel_backend(1)",
        "function pg_cancel_backend is not allowed (position 1)",
    ),
    (
        "terminate-backend",
        "pg_terminate_backend(1)",
        "function pg_terminate_backend is not allowed (position 1)",
    ),
    (
        "reload-conf",
        "pg_reload_conf()",
        "function pg_reload_conf is not allowed (position 1)",
    ),
    (
        "lo-import",
        "lo_import('/etc/passwd') > 0",
        "function lo_import is not allowed (position 1)",
    ),
    (
        "lo-export",
        "lo_export(1, '/tmp/campaigner-exported') = 1",
        "function lo_export is not allowed (position 1)",
    ),
    ("lo-create", "lo_create(0) > 0", "function lo_create is not allowed (position 1)"),
    (
        "dblink",
        "dblink('host=127.0.0.1', 'SELECT 1') IS NOT NULL",
        "function dblink is not allowed (position 1)",
    ),
    (
        "nextval",
        "nextval('campaigns_id_seq') > 0",
        "function nextval is not allowed (position 1)",
    ),
    (
        "setval",
        "setval('campaigns_id_seq', 1) > 0",
        "function setval is not allowed (position 1)",
    ),
    (
        "advisory-lock",
        "pg_advisory_lock(1) IS NULL",
        "function pg_advisory_lock is not allowed (position 1)",
    ),
    (
        "notify",
        "pg_notify('campaigns', 'x') IS NULL",
        "function pg_notify is not allowed (position 1)",
    ),
    (
        "query-to-xml",
        "query_to_xml('SELECT * FROM pg_shadow', true, true, '') IS NOT NULL",
        "function query_to_xml is not allowed (position 1)",
    ),
    (
        "txid-current",
        "txid_current() > 0",
        "function txid_current is not allowed (position 1)",
    ),
    ("random", "random() < 0.5", "function random is not allowed (position 1)"),
    (
        "other-schema-function",
        "public.lower(email) = 'x'",
        "function public.lower is not allowed (position 1)",
    ),
    ("aggregate", "count(*) > 0", "function count is not allowed (position 1)"),
    (
        "window",
        "row_number() OVER () > 1",
        "function row_number is not allowed (position 1)",
    ),
    (
        "filter",
        "lower(email) FILTER (WHERE true) = 'x'",
        "FILTER in lower() is not allowed (position 1)",
    ),
    (
        "variadic",
        "concat(VARIADIC ARRAY['a']) = 'a'",
        "VARIADIC in concat() is not allowed (position 1)",
    ),
    (
        "set-returning",
        "jsonb_path_query(attributes, '$.plan') IS NOT NULL",
        "function jsonb_path_query is not allowed (position 1)",
    ),
    (
        "cast-regclass",
        "email::regclass IS NOT NULL",
        "cast to regclass is not allowed (position 6)",
    ),
    (
        "cast-oid",
        "'pg_shadow'::regclass::oid > 0",
        "cast to oid is not allowed (position 22)",
    ),
    (
        "cast-regproc",
        "CAST(id AS regproc) IS NOT NULL",
        "cast to regproc is not allowed (position 1)",
    ),
    (
        "cast-qualified-regtype",
        "id::pg_catalog.regtype IS NOT NULL",
        "cast to pg_catalog.regtype is not allowed (position 3)",
    ),
    (
        "cast-regconfig",
        "attributes::text::regconfig IS NULL",
        "cast to regconfig is not allowed (position 17)",
    ),
    ("cast-xml", "email::xml IS NOT NULL", "cast to xml is not allowed (position 6)"),
    (
        "cast-other-schema",
        "country::public.country_code IS NOT NULL",
        "cast to public.country_code is not allowed (position 8)",
    ),
    (
        "typed-literal-regclass",
        "regclass 'pg_shadow' IS NOT NULL",
        "cast to regclass is not allowed (position 1)",
    ),
    (
        "unknown-column",
        "no_such_column = 'DE'",
        "column no_such_column is not a column of 'user_data' (position 1)",
    ),
    (
        "system-column",
        "ctid IS NOT NULL",
        "column ctid is not a column of 'user_data' (position 1)",
    ),
    (
        "whole-row",
        "user_data IS NOT NULL",
        "column user_data is not a column of 'user_data' (position 1)",
    ),
    (
        "qualified-column",
        "user_data.id > 0",
        "user_data.id names another table or schema; write the column name alone (position 1)",
    ),
    (
        "other-table-column",
        "pg_shadow.passwd IS NOT NULL",
        "pg_shadow.passwd names another table or schema; write the column name alone (position 1)",
    ),
    (
        "schema-qualified-column",
        "public.user_data.id > 0",
        "public.user_data.id names another table or schema; write the column name alone (position 1)",
    ),
    ("star", "user_data.* IS NOT NULL", "* is not allowed (position 1)"),
    (
        "current-user",
        "current_user = 'postgres'",
        "current_user is not allowed (position 1)",
    ),
    ("collate", "email COLLATE \"C\" = 'x'", "COLLATE is not allowed (position 7)"),
    (
        "operator-other-schema",
        "id OPERATOR(public.=) 1",
        "operator public.= is not allowed (position 4)",
    ),
    ("unknown-operator", "email === 'x'", "operator === is not allowed (position 7)"),
    ("parameter", "$1 = 1", "a parameter ($n) is not allowed (position 1)"),
    ("default", "DEFAULT", "DEFAULT is not allowed (position 1)"),
    (
        "xml-predicate",
        "email IS DOCUMENT",
        "an XML expression is not allowed (position 7)",
    ),
    (
        "deeply-nested",
        "NOT " * 3000 + "true",
        "cohort is nested too deeply to be checked; simplify it",
    ),
    (
        "field-selection",
        "(attributes).plan IS NOT NULL",
        "field selection is not allowed; use -> or ->> on JSON (position 19)",
    ),
]

# Realistic cohorts over the reference user_data table, as filled by
# conftest.insert_users and enrich_users below.
ACCEPTED = [
    ("consent-and-country", "email_consent AND country = 'FR'"),
    ("western-europe", "country IN ('DE', 'FR', 'IT') AND email_consent"),
    ("not-anglophone", "country NOT IN ('US', 'GB')"),
    ("active-30-days", "last_active_at > now() - interval '30 days'"),
    (
        "lapsing-window",
        "last_active_at BETWEEN now() - interval '90 days'"
        " AND now() - interval '30 days'",
    ),
    (
        "dormant-or-never",
        "last_active_at < current_date - 60 OR last_active_at IS NULL",
    ),
    (
        "sms-any-country",
        "sms_consent AND phone IS NOT NULL AND country = ANY (ARRAY['FR', 'ES'])",
    ),
    ("ltv-band", "lifetime_value BETWEEN 20 AND 50"),
    ("high-ltv-no-whatsapp", "lifetime_value >= 40 AND NOT whatsapp_consent"),
    (
        "ltv-by-country-case",
        "CASE WHEN country = 'DE' THEN lifetime_value > 50"
        " ELSE lifetime_value > 80 END",
    ),
    ("plan-pro", "attributes ->> 'plan' = 'pro'"),
    ("plan-plus-containment", """attributes @> '{"plan": "plus"}'"""),
    (
        "interest-travel",
        "attributes ? 'interests' AND attributes -> 'interests' ? 'travel'",
    ),
    ("segment-cast", "(attributes ->> 'segment')::int IN (1, 3)"),
    (
        "json-array-length",
        "jsonb_typeof(attributes -> 'interests') = 'array'"
        " AND jsonb_array_length(attributes -> 'interests') >= 2",
    ),
    (
        "json-path",
        """jsonb_path_exists(attributes, '$.interests[*] ? (@ == "deals")')""",
    ),
    ("email-suffix", "lower(email) LIKE '%7@example.test'"),
    ("ilike-and-language", "email ILIKE 'USER1%' AND language = 'fr'"),
    (
        "email-domain",
        "split_part(email, '@', 2) = 'example.test' AND length(first_name) > 7",
    ),
    (
        "weekend-in-berlin",
        "extract(dow FROM last_active_at AT TIME ZONE 'Europe/Berlin') IN (0, 6)",
    ),
    ("holdout-by-id", "mod(id, 10) <> 0 AND email_consent IS TRUE"),
    ("active-today-or-yesterday", "date(last_active_at) >= current_date - 1"),
    ("inactive-by-age", "age(now(), last_active_at) > interval '100 days'"),
    ("low-ltv-greatest", "greatest(lifetime_value, 10) = 10"),
    ("city-regex", "city ~ '^city(1|2)$'"),
    ("rounded-ltv", "round(lifetime_value)::integer % 7 = 0"),
    (
        "not-de-any-messaging",
        "country IS DISTINCT FROM 'DE' AND (whatsapp_consent OR sms_consent)",
    ),
    (
        "commented-winback",
        "/* winback */ last_active_at < now() - interval '60 days' -- dormant\n"
        "AND email_consent",
    ),
    (
        "coalesce-plan",
        "coalesce(attributes ->> 'plan', 'free') <> 'free' AND created_at <= now()",
    ),
]

# Fills the columns insert_users leaves at their defaults: activity spread over
# 120 days (half a day off the day boundaries, some never active), a plan, and
# interests for some.
ENRICH_USERS = """
UPDATE user_data SET
    last_active_at = CASE WHEN id % 11 = 0 THEN NULL
        ELSE now() - (id % 120) * interval '1 day' - interval '12 hours' END,
    attributes = attributes
        || jsonb_build_object('plan', (ARRAY['free', 'plus', 'pro'])[1 + id % 3])
        || CASE id % 5
            WHEN 0 THEN '{"interests": ["travel", "deals"]}'::jsonb
            WHEN 1 THEN '{"interests": ["books"]}'::jsonb
            ELSE '{}'::jsonb END
"""
