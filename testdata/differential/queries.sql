-- Differential corpus for pgshard (internal/difftest).
--
-- Every entry starts with "-- name: <id>"; "-- ordered" marks a query whose
-- ORDER BY fixes the order of all its rows (answers are then compared as
-- ordered lists, otherwise as multisets); "-- args: v1, v2" gives the bind
-- parameters ($1, $2, ...): integers, decimals, 'strings', true, false, NULL.
--
-- Tables (see internal/difftest/dataset.go): people (id bigint, the key;
-- name, dept text; salary numeric(12,2); age int; score float8; active bool;
-- joined timestamptz), visits (person_id bigint, the key, co-located with
-- people; visit_id int; amount numeric; at timestamptz; note text) and the
-- ordinary table depts (dept text, budget numeric) on the metadata database;
-- ranks, a reference table (dept text, floor int, head text, band_low and
-- band_high numeric(12,2)), a copy on every worker;
-- events, days and stamps (keyed by timestamptz, date and timestamp) are
-- described in the section on session and server settings at the end.
-- Every query here is answered by the oracle (a plain database); pgshard
-- must answer it equally or refuse it with SQLSTATE 0A000.
--
-- Rules for new entries: an ordered query's ORDER BY must be total (end with
-- a unique key); LIMIT without a total ORDER BY only inside count(*);
-- ordered aggregates (string_agg, array_agg) need ORDER BY inside.

-- ===== Point lookups by key: literal, parameters, casts, negative and large keys, NULL =====

-- name: point_literal
SELECT * FROM people WHERE id = 42;

-- name: point_literal_reversed
SELECT * FROM people WHERE 42 = id;

-- name: point_param
-- args: 42
SELECT * FROM people WHERE id = $1;

-- name: point_param_reversed
-- args: 43
SELECT name, dept FROM people WHERE $1 = id;

-- name: point_param_cast_bigint
-- args: 44
SELECT * FROM people WHERE id = $1::bigint;

-- name: point_param_cast_int
-- args: 45
SELECT * FROM people WHERE id = $1::int;

-- name: point_param_string
-- args: '46'
SELECT * FROM people WHERE id = $1;

-- name: point_text_literal
SELECT * FROM people WHERE id = '47';

-- name: point_cast_literal_bigint
SELECT * FROM people WHERE id = 48::bigint;

-- name: point_cast_literal_int2
SELECT * FROM people WHERE id = 49::smallint;

-- name: point_negative_literal
SELECT * FROM people WHERE id = -50;

-- name: point_negative_param
-- args: -100
SELECT * FROM people WHERE id = $1;

-- name: point_negative_text
SELECT * FROM people WHERE id = '-150';

-- name: point_large_literal
SELECT * FROM people WHERE id = 1000000000097;

-- name: point_large_param
-- args: 1000000000194
SELECT * FROM people WHERE id = $1;

-- name: point_large_cast
SELECT * FROM people WHERE id = 1000000000291::int8;

-- name: point_missing_literal
SELECT * FROM people WHERE id = 99999999;

-- name: point_missing_param
-- args: -1
SELECT * FROM people WHERE id = $1;

-- name: point_null_param
-- args: NULL
SELECT * FROM people WHERE id = $1;

-- name: point_null_literal
SELECT * FROM people WHERE id = NULL;

-- name: point_qualified
SELECT people.name FROM people WHERE people.id = 51;

-- name: point_alias
SELECT p.name, p.age FROM people p WHERE p.id = 52;

-- name: point_alias_as
SELECT x.* FROM people AS x WHERE x.id = 53;

-- name: point_schema_qualified
SELECT * FROM public.people WHERE id = 54;

-- name: point_quoted_idents
SELECT "name" FROM "people" WHERE "id" = 55;

-- name: point_upper_case_idents
SELECT NAME, DEPT FROM PEOPLE WHERE ID = 56;

-- name: point_expressions
SELECT upper(name), lower(dept), salary * 1.1, age + 1, joined::date, score * 2 FROM people WHERE id = 57;

-- name: point_extra_filter_match
SELECT id FROM people WHERE id = 58 AND age IS NOT NULL OR id = 58 AND age IS NULL;

-- name: point_extra_filter
SELECT id, age FROM people WHERE id = 59 AND coalesce(age, 0) >= 0;

-- name: point_extra_false
SELECT * FROM people WHERE id = 60 AND false;

-- name: point_decimal_literal
SELECT * FROM people WHERE id = 61.0;

-- name: point_decimal_fraction
SELECT * FROM people WHERE id = 61.5;

-- name: point_numeric_cast
SELECT * FROM people WHERE id = 62::numeric;

-- name: point_float_cast
SELECT * FROM people WHERE id = 63::float8;

-- name: point_text_cast_column
SELECT * FROM people WHERE id::text = '64';

-- name: point_constant_expression
SELECT * FROM people WHERE id = 60 + 5;

-- name: point_function_key
SELECT * FROM people WHERE id = abs(-66);

-- name: point_scalar_subquery_key
SELECT * FROM people WHERE id = (SELECT 67);

-- name: point_same_pin_twice
SELECT * FROM people WHERE id = 68 AND id = 68;

-- name: point_conflicting_pins
SELECT * FROM people WHERE id = 69 AND id = 70;

-- name: point_conflicting_pins_params
-- args: 71, 72
SELECT * FROM people WHERE id = $1 AND id = $2;

-- name: point_param_and_nonkey_param
-- args: 73, 10
SELECT id, name FROM people WHERE id = $1 AND age > $2;

-- name: point_in_single
SELECT * FROM people WHERE id IN (74);

-- name: point_any_single
SELECT * FROM people WHERE id = ANY(ARRAY[75]);

-- name: point_aggregates
SELECT count(*), sum(salary), min(name), max(joined), avg(age) FROM people WHERE id = 76;

-- name: point_count_param
-- args: 77
SELECT count(*) FROM people WHERE id = $1;

-- name: point_for_update
SELECT id, name FROM people WHERE id = 78 FOR UPDATE;

-- name: point_row_to_json
SELECT row_to_json(p) FROM people p WHERE p.id = 79;

-- name: point_limit
SELECT * FROM people WHERE id = 80 LIMIT 1;

-- name: point_order_by
-- ordered
SELECT id, name FROM people WHERE id = 81 ORDER BY name;

-- name: point_not_equal_pin_text
SELECT * FROM people WHERE id = '82'::bigint;

-- name: point_between_same
SELECT * FROM people WHERE id BETWEEN 83 AND 83;

-- name: visits_point_literal
-- ordered
SELECT * FROM visits WHERE person_id = 42 ORDER BY visit_id;

-- name: visits_point_param
-- ordered
-- args: 84
SELECT visit_id, amount, at, note FROM visits WHERE person_id = $1 ORDER BY visit_id;

-- name: visits_point_agg
SELECT count(*), sum(amount), min(at), max(at), avg(amount), count(DISTINCT note) FROM visits WHERE person_id = 85;

-- name: visits_point_agg_param
-- args: 86
SELECT count(*), sum(amount) FROM visits WHERE person_id = $1;

-- name: visits_point_missing
SELECT * FROM visits WHERE person_id = 4999999;

-- name: visits_point_order_limit
-- ordered
-- args: 87
SELECT visit_id, amount FROM visits WHERE person_id = $1 ORDER BY amount DESC NULLS LAST, visit_id LIMIT 2;

-- name: visits_point_and_visit
SELECT * FROM visits WHERE person_id = 88 AND visit_id > 0;

-- name: visits_point_group
SELECT note, count(*), sum(amount) FROM visits WHERE person_id = 89 GROUP BY note;

-- name: visits_point_negative
SELECT count(*), sum(amount) FROM visits WHERE person_id = -200;

-- ===== Key IN lists, = ANY, OR of key equalities, key ranges =====

-- name: in_list_literals
SELECT * FROM people WHERE id IN (1, 2, 3, 4, 5);

-- name: in_list_params
-- args: 6, 7, 8
SELECT * FROM people WHERE id IN ($1, $2, $3);

-- name: in_list_missing_and_negative
SELECT id, name FROM people WHERE id IN (9, 99999999, -50, -100);

-- name: in_list_large_keys
SELECT id, name FROM people WHERE id IN (1000000000097, 1000000000194, 1000000000388, 10);

-- name: in_list_thirty
SELECT id, salary FROM people WHERE id IN (37, 74, 111, 148, 185, 222, 259, 296, 333, 370, 407, 444, 481, 518, 555, 592, 629, 666, 703, 740, 777, 814, 851, 888, 925, 962, 999, 1036, 1073, 1110);

-- name: in_list_duplicates
SELECT id FROM people WHERE id IN (11, 11, 12, 12);

-- name: in_list_with_null
SELECT id FROM people WHERE id IN (13, NULL, 14);

-- name: in_list_count
SELECT count(*) FROM people WHERE id IN (1, 2, 3, 4, 5, 99999999);

-- name: in_list_sum
SELECT count(*), sum(salary), sum(age), min(joined), max(score) FROM people WHERE id IN (15, 16, 17, 18);

-- name: in_list_order
-- ordered
SELECT id, name FROM people WHERE id IN (19, 20, 21, 22, 23) ORDER BY id DESC;

-- name: in_list_order_limit
-- ordered
SELECT id FROM people WHERE id IN (24, 25, 26, 27, 28) ORDER BY id LIMIT 2;

-- name: in_list_group
SELECT dept, count(*) FROM people WHERE id IN (29, 30, 31, 32, 33, 34, 35) GROUP BY dept;

-- name: not_in_list_count
SELECT count(*) FROM people WHERE id NOT IN (1, 2, 3);

-- name: any_array_literal
SELECT * FROM people WHERE id = ANY('{36,37,38}');

-- name: any_array_constructor
SELECT * FROM people WHERE id = ANY(ARRAY[39, 40, 41]);

-- name: any_array_param
-- args: '{90,91,92}'
SELECT id, name FROM people WHERE id = ANY($1::bigint[]);

-- name: any_array_count
SELECT count(*), sum(age) FROM people WHERE id = ANY(ARRAY[93, 94, 95, -100]);

-- name: all_array_ne
SELECT count(*) FROM people WHERE id <> ALL(ARRAY[1, 2, 3]);

-- name: or_key_two
SELECT * FROM people WHERE id = 96 OR id = 97;

-- name: or_key_three_params
-- args: 98, 99, 101
SELECT id, dept FROM people WHERE id = $1 OR id = $2 OR id = $3;

-- name: or_key_same_value
SELECT * FROM people WHERE id = 102 OR id = 102;

-- name: or_key_and_filter
SELECT id, age FROM people WHERE (id = 103 OR id = 104) AND age > 30;

-- name: or_key_or_nonkey
SELECT count(*) FROM people WHERE id = 105 OR dept = 'eng';

-- name: or_key_count
SELECT count(*), max(salary) FROM people WHERE id = 106 OR id = 107;

-- name: visits_in_list
SELECT person_id, visit_id, amount FROM visits WHERE person_id IN (42, 43, 44, 45);

-- name: visits_or_keys
SELECT count(*), sum(amount) FROM visits WHERE person_id = 46 OR person_id = 47;

-- name: in_values_subquery
SELECT id FROM people WHERE id IN (VALUES (108), (109), (110));

-- name: key_between
SELECT id, name FROM people WHERE id BETWEEN 100 AND 130;

-- name: key_gt_large
SELECT id FROM people WHERE id > 1000000000000;

-- name: key_lt_zero_count
SELECT count(*), min(id), max(id) FROM people WHERE id < 0;

-- name: key_ne_count
SELECT count(*) FROM people WHERE id <> 42;

-- name: key_is_null
SELECT count(*) FROM people WHERE id IS NULL;

-- name: key_modulo
SELECT id FROM people WHERE id % 1000 = 7;

-- name: key_in_range_order
-- ordered
SELECT id FROM people WHERE id BETWEEN 200 AND 230 ORDER BY id;

-- ===== Plain scans with filters on non-key columns =====

-- name: scan_all_people
SELECT * FROM people;

-- name: scan_all_visits
SELECT * FROM visits;

-- name: scan_dept_eq
SELECT id, name FROM people WHERE dept = 'eng';

-- name: scan_dept_case
SELECT id, name FROM people WHERE dept = 'Eng';

-- name: scan_dept_accent
SELECT id, name, dept FROM people WHERE dept = 'ñandú';

-- name: scan_dept_umlaut
SELECT id FROM people WHERE dept = 'Über-ops' AND age < 25;

-- name: scan_dept_null
SELECT id, name FROM people WHERE dept IS NULL;

-- name: scan_dept_empty
SELECT id, dept FROM people WHERE dept = '';

-- name: scan_dept_in
SELECT id, dept FROM people WHERE dept IN ('eng', 'sales') AND age = 33;

-- name: scan_name_empty
SELECT id, name FROM people WHERE name = '';

-- name: scan_name_null
SELECT id FROM people WHERE name IS NULL;

-- name: scan_name_like_prefix
SELECT id, name FROM people WHERE name LIKE 'Zoë%';

-- name: scan_name_ilike
SELECT id, name FROM people WHERE name ILIKE 'émile%';

-- name: scan_name_ilike_umlaut
SELECT id, name FROM people WHERE name ILIKE '%MÜLLER%';

-- name: scan_name_regex
SELECT id, name FROM people WHERE name ~ '^[ÉE]mile ';

-- name: scan_name_not_like
SELECT count(*) FROM people WHERE name NOT LIKE '%a%';

-- name: scan_name_quote
SELECT id, name FROM people WHERE name LIKE 'O''Brien%';

-- name: scan_name_cjk
SELECT id, name FROM people WHERE name LIKE '李%';

-- name: scan_name_length
SELECT id, name, length(name), octet_length(name) FROM people WHERE length(name) > 20;

-- name: scan_age_between
SELECT id, age FROM people WHERE age BETWEEN 30 AND 31;

-- name: scan_age_null_dept
SELECT id FROM people WHERE age IS NULL AND dept = 'sales';

-- name: scan_salary_gt
SELECT id, salary FROM people WHERE salary > 249000;

-- name: scan_salary_zero
SELECT id, salary FROM people WHERE salary = 0;

-- name: scan_salary_whole
SELECT id, salary FROM people WHERE salary = trunc(salary) AND age = 50;

-- name: scan_score_negative
SELECT id, score FROM people WHERE score < -99;

-- name: scan_score_between
SELECT id, score FROM people WHERE score BETWEEN 500 AND 501;

-- name: scan_score_integral
SELECT id, score FROM people WHERE score = 7;

-- name: scan_active_age
SELECT id FROM people WHERE active AND age = 40;

-- name: scan_not_active
SELECT id FROM people WHERE NOT active AND age = 41;

-- name: scan_active_null
SELECT id, active FROM people WHERE active IS NULL AND age < 20;

-- name: scan_active_is_not_true
SELECT count(*) FROM people WHERE active IS NOT TRUE;

-- name: scan_joined_month
SELECT id, joined FROM people WHERE joined >= '2020-01-01' AND joined < '2020-02-01';

-- name: scan_joined_null_old
SELECT id, age FROM people WHERE joined IS NULL AND age > 70;

-- name: scan_joined_tz_literal
SELECT id FROM people WHERE joined < '2015-01-10 12:00:00+02';

-- name: scan_target_expressions
SELECT id, upper(name), lower(dept), salary * 12, age / 10, round(score::numeric, 2), joined::date FROM people WHERE age = 33;

-- name: scan_case
SELECT id, CASE WHEN salary > 100000 THEN 'high' WHEN salary IS NULL THEN 'unknown' ELSE 'low' END FROM people WHERE age = 34;

-- name: scan_coalesce
SELECT id, coalesce(name, '(none)'), coalesce(dept, '-'), coalesce(age, -1) FROM people WHERE age IS NULL OR name IS NULL;

-- name: scan_concat
SELECT id, name || ' (' || coalesce(dept, '-') || ')' FROM people WHERE age = 35;

-- name: scan_extract
SELECT id, extract(year FROM joined), extract(dow FROM joined) FROM people WHERE age = 36;

-- name: scan_constants
SELECT 'x' AS c, 1 AS one, id FROM people WHERE age = 19;

-- name: scan_where_false
SELECT id FROM people WHERE false;

-- name: scan_where_true_count_rows
SELECT 1 FROM people WHERE age = 18;

-- name: scan_param_nonkey
-- args: 44, 'eng'
SELECT id, name FROM people WHERE age = $1 AND dept = $2;

-- name: scan_param_text_accent
-- args: 'élan'
SELECT id FROM people WHERE dept = $1;

-- name: scan_is_distinct_from
SELECT count(*) FROM people WHERE dept IS DISTINCT FROM 'eng';

-- name: scan_visits_note
SELECT person_id, visit_id FROM visits WHERE note = 'très bien';

-- name: scan_visits_amount
SELECT person_id, visit_id, amount FROM visits WHERE amount > 990;

-- name: scan_visits_negative
SELECT person_id, visit_id, amount FROM visits WHERE amount < 0;

-- name: scan_visits_at
SELECT visit_id, at FROM visits WHERE at BETWEEN '2021-03-01' AND '2021-03-08';

-- name: scan_visits_orphans
SELECT count(*) FROM visits WHERE person_id >= 5000000;

-- name: scan_visits_expr
SELECT visit_id, amount * 3, round(amount, 1), upper(note) FROM visits WHERE visit_id % 500 = 0;

-- ===== Aggregates without GROUP BY, on every type =====

-- name: agg_count_star
SELECT count(*) FROM people;

-- name: agg_count_id
SELECT count(id) FROM people;

-- name: agg_count_name
SELECT count(name) FROM people;

-- name: agg_count_dept
SELECT count(dept) FROM people;

-- name: agg_count_salary
SELECT count(salary) FROM people;

-- name: agg_count_age
SELECT count(age) FROM people;

-- name: agg_count_score
SELECT count(score) FROM people;

-- name: agg_count_active
SELECT count(active) FROM people;

-- name: agg_count_joined
SELECT count(joined) FROM people;

-- name: agg_count_distinct_name
SELECT count(DISTINCT name) FROM people;

-- name: agg_count_distinct_dept
SELECT count(DISTINCT dept) FROM people;

-- name: agg_count_distinct_salary
SELECT count(DISTINCT salary) FROM people;

-- name: agg_count_distinct_age
SELECT count(DISTINCT age) FROM people;

-- name: agg_count_distinct_score
SELECT count(DISTINCT score) FROM people;

-- name: agg_count_distinct_active
SELECT count(DISTINCT active) FROM people;

-- name: agg_count_distinct_joined
SELECT count(DISTINCT joined) FROM people;

-- name: agg_count_distinct_id
SELECT count(DISTINCT id) FROM people;

-- name: agg_sum_id
SELECT sum(id) FROM people;

-- name: agg_sum_salary
SELECT sum(salary) FROM people;

-- name: agg_sum_age
SELECT sum(age) FROM people;

-- name: agg_sum_score
SELECT sum(score) FROM people;

-- name: agg_min_id
SELECT min(id) FROM people;

-- name: agg_max_id
SELECT max(id) FROM people;

-- name: agg_min_name
SELECT min(name) FROM people;

-- name: agg_max_name
SELECT max(name) FROM people;

-- name: agg_min_dept
SELECT min(dept) FROM people;

-- name: agg_max_dept
SELECT max(dept) FROM people;

-- name: agg_min_salary
SELECT min(salary) FROM people;

-- name: agg_max_salary
SELECT max(salary) FROM people;

-- name: agg_min_age
SELECT min(age) FROM people;

-- name: agg_max_age
SELECT max(age) FROM people;

-- name: agg_min_score
SELECT min(score) FROM people;

-- name: agg_max_score
SELECT max(score) FROM people;

-- name: agg_min_joined
SELECT min(joined) FROM people;

-- name: agg_max_joined
SELECT max(joined) FROM people;

-- name: agg_avg_id
SELECT avg(id) FROM people;

-- name: agg_avg_salary
SELECT avg(salary) FROM people;

-- name: agg_avg_age
SELECT avg(age) FROM people;

-- name: agg_avg_score
SELECT avg(score) FROM people;

-- name: agg_bool_and
SELECT bool_and(active) FROM people;

-- name: agg_bool_or
SELECT bool_or(active) FROM people;

-- name: agg_every
SELECT every(age > 17) FROM people;

-- name: agg_bool_and_filtered
SELECT bool_and(active), bool_or(active) FROM people WHERE dept = 'R&D' AND age = 30;

-- name: agg_visits_count
SELECT count(*), count(amount), count(at), count(note), count(DISTINCT person_id) FROM visits;

-- name: agg_visits_sum
SELECT sum(amount), sum(visit_id), sum(person_id) FROM visits;

-- name: agg_visits_min_max
SELECT min(amount), max(amount), min(at), max(at), min(visit_id), max(visit_id) FROM visits;

-- name: agg_visits_min_max_note
SELECT min(note), max(note) FROM visits;

-- name: agg_visits_avg
SELECT avg(amount) FROM visits;

-- name: agg_mixed_merge
SELECT count(*), sum(salary), min(joined), max(age), sum(score), min(score) FROM people;

-- name: agg_mixed_filtered
SELECT count(*), sum(salary), max(joined), min(age) FROM people WHERE dept = 'sales' AND active;

-- name: agg_filter_clause
SELECT count(*) FILTER (WHERE active), count(*) FILTER (WHERE NOT active) FROM people;

-- name: agg_sum_filter_clause
SELECT sum(salary) FILTER (WHERE dept = 'eng'), sum(age) FILTER (WHERE age > 60) FROM people;

-- name: agg_of_expression
SELECT sum(salary * 2), max(length(name)), min(age + 1) FROM people;

-- name: agg_min_of_text_expression
SELECT min(lower(name)), max(upper(dept)) FROM people;

-- name: agg_count_expression
SELECT count(nullif(name, '')) FROM people;

-- name: agg_sum_int_cast
SELECT sum(age::bigint), sum(age::numeric) FROM people;

-- name: agg_sum_float_cast
SELECT sum(age::float8) FROM people;

-- name: agg_sum_numeric_of_float
SELECT sum(score::numeric) FROM people;

-- name: agg_min_distinct
SELECT min(DISTINCT age), max(DISTINCT salary) FROM people;

-- name: agg_sum_distinct
SELECT sum(DISTINCT age) FROM people;

-- name: agg_empty_set
SELECT count(*), count(age), sum(age), sum(salary), min(salary), max(joined), sum(score) FROM people WHERE age > 1000;

-- name: agg_empty_avg_bool
SELECT avg(score), bool_and(active), bool_or(active), count(DISTINCT dept) FROM people WHERE age > 1000;

-- name: agg_all_null_input
SELECT count(age), sum(age), min(age), max(age) FROM people WHERE age IS NULL;

-- name: agg_string_agg
SELECT string_agg(name, ',' ORDER BY id) FROM people WHERE id BETWEEN 1 AND 40;

-- name: agg_array_agg
SELECT array_agg(id ORDER BY id) FROM people WHERE age = 25 AND dept = 'eng';

-- name: agg_stddev_variance
SELECT stddev(age), variance(salary), stddev_samp(salary) FROM people;

-- name: agg_percentile
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY age), percentile_disc(0.9) WITHIN GROUP (ORDER BY salary) FROM people;

-- name: agg_mode
SELECT mode() WITHIN GROUP (ORDER BY dept) FROM people;

-- name: agg_bit_ops
SELECT bit_or(age), bit_and(age) FROM people;

-- name: agg_count_star_cast
SELECT count(*)::int FROM people;

-- name: agg_count_plus_one
SELECT count(*) + 1 FROM people;

-- name: agg_sum_over_count
SELECT sum(salary) / count(*) FROM people;

-- name: agg_sum_over_count_salary
SELECT sum(salary) / count(salary) FROM people;

-- name: agg_round_avg
SELECT round(avg(salary), 2) FROM people;

-- name: agg_coalesce_max
SELECT coalesce(max(age), 0) FROM people WHERE dept = 'no such dept';

-- name: agg_max_minus_min
SELECT max(age) - min(age), max(joined) - min(joined) FROM people;

-- name: agg_ratio_active
SELECT round(100.0 * count(*) FILTER (WHERE active) / count(*), 3) FROM people;

-- name: agg_aliased
SELECT count(*) AS n, sum(salary) AS total FROM people;

-- name: agg_with_constant
SELECT 'total', count(*) FROM people;

-- name: agg_where_key_range
SELECT count(*), sum(salary) FROM people WHERE id BETWEEN 1000 AND 2000;

-- name: agg_nested_case
SELECT sum(CASE WHEN active THEN 1 ELSE 0 END), sum(CASE WHEN dept = 'eng' THEN salary END) FROM people;

-- name: agg_count_distinct_two
SELECT count(DISTINCT (dept, active)) FROM people;

-- name: agg_json
SELECT json_agg(id ORDER BY id) FROM people WHERE id < 10;

-- name: agg_min_max_bool_cast
SELECT min(active::int), max(active::int) FROM people;

-- name: agg_param_filter
-- args: 60
SELECT count(*), sum(salary) FROM people WHERE age > $1;

-- name: agg_limit
SELECT count(*) FROM people LIMIT 1;

-- ===== GROUP BY one/several columns and expressions, HAVING =====

-- name: group_dept_count
SELECT dept, count(*) FROM people GROUP BY dept;

-- name: group_dept_all_aggs
SELECT dept, count(*), count(age), sum(salary), min(age), max(age), avg(salary), min(joined), max(joined) FROM people GROUP BY dept;

-- name: group_dept_float_aggs
SELECT dept, sum(score), avg(score), min(score), max(score) FROM people GROUP BY dept;

-- name: group_dept_text_aggs
SELECT dept, min(name), max(name) FROM people GROUP BY dept;

-- name: group_active
SELECT active, count(*), sum(age) FROM people GROUP BY active;

-- name: group_dept_active
SELECT dept, active, count(*), max(salary) FROM people GROUP BY dept, active;

-- name: group_age
SELECT age, count(*) FROM people GROUP BY age;

-- name: group_age_decade
SELECT age / 10, count(*), avg(salary) FROM people GROUP BY age / 10;

-- name: group_year
SELECT extract(year FROM joined), count(*) FROM people GROUP BY extract(year FROM joined);

-- name: group_date_trunc_year
SELECT date_trunc('year', joined), count(*), min(joined) FROM people GROUP BY 1;

-- name: group_lower_name
SELECT lower(name), count(*) FROM people GROUP BY lower(name);

-- name: group_name_exact
SELECT name, count(*) FROM people GROUP BY name;

-- name: group_case_expression
SELECT CASE WHEN salary > 100000 THEN 'high' ELSE 'low' END AS band, count(*) FROM people GROUP BY band;

-- name: group_by_ordinal
SELECT dept, count(*) FROM people GROUP BY 1;

-- name: group_by_alias
SELECT lower(dept) AS d, count(*) FROM people GROUP BY d;

-- name: group_by_bool_expr
SELECT salary IS NULL, age IS NULL, count(*) FROM people GROUP BY 1, 2;

-- name: group_having_count
SELECT dept, count(*) FROM people GROUP BY dept HAVING count(*) > 1500;

-- name: group_having_avg
SELECT age, avg(salary) FROM people GROUP BY age HAVING avg(salary) > 136000;

-- name: group_having_unselected
SELECT dept FROM people GROUP BY dept HAVING max(salary) > 249500;

-- name: group_having_without_group
SELECT count(*) FROM people HAVING count(*) > 0;

-- name: group_having_false
SELECT count(*) FROM people HAVING count(*) < 0;

-- name: group_having_param
-- args: 330
SELECT age, count(*) FROM people GROUP BY age HAVING count(*) > $1;

-- name: group_by_key
SELECT id, count(*), sum(salary) FROM people WHERE id < 100 GROUP BY id;

-- name: group_by_key_having
SELECT id FROM people GROUP BY id HAVING count(*) > 1;

-- name: group_visits_by_key
SELECT person_id, count(*), sum(amount) FROM visits GROUP BY person_id;

-- name: group_visits_by_key_having
SELECT person_id, count(*) FROM visits GROUP BY person_id HAVING count(*) >= 6;

-- name: group_visits_note
SELECT note, count(*), sum(amount), min(at) FROM visits GROUP BY note;

-- name: group_visits_month
SELECT date_trunc('month', at) AS m, count(*), sum(amount) FROM visits GROUP BY m;

-- name: group_string_agg
SELECT dept, string_agg(name, ',' ORDER BY id) FROM people WHERE id < 200 GROUP BY dept;

-- name: group_bool_aggs
SELECT dept, bool_and(active), bool_or(active), every(age > 20) FROM people GROUP BY dept;

-- name: group_count_distinct
SELECT dept, count(DISTINCT age), count(DISTINCT name) FROM people GROUP BY dept;

-- name: group_rollup
SELECT dept, active, count(*) FROM people GROUP BY ROLLUP (dept, active);

-- name: group_cube
SELECT active, age IS NULL, count(*) FROM people GROUP BY CUBE (1, 2);

-- name: group_grouping_sets
SELECT dept, active, count(*), grouping(dept, active) FROM people GROUP BY GROUPING SETS ((dept), (active), ());

-- name: group_order_limit
-- ordered
SELECT dept, count(*) FROM people GROUP BY dept ORDER BY count(*) DESC, dept LIMIT 3;

-- name: group_order_all
-- ordered
SELECT age, count(*) FROM people GROUP BY age ORDER BY age NULLS FIRST;

-- name: group_order_desc_offset
-- ordered
SELECT age, count(*) FROM people GROUP BY age ORDER BY age DESC NULLS LAST LIMIT 5 OFFSET 2;

-- name: group_pinned
SELECT dept, count(*) FROM people WHERE id = 42 GROUP BY dept;

-- name: group_pinned_visits
SELECT extract(year FROM at), count(*), sum(amount) FROM visits WHERE person_id = 42 GROUP BY 1;

-- name: group_expr_over_aggs
SELECT dept, sum(salary) / count(*), round(avg(salary), 2), coalesce(max(age), 0), max(age) - min(age) FROM people GROUP BY dept;

-- name: group_two_exprs
SELECT extract(year FROM joined) AS y, age / 20 AS a, count(*), sum(salary) FROM people GROUP BY y, a;

-- name: group_filtered
SELECT dept, count(*) FROM people WHERE active AND salary > 200000 GROUP BY dept;

-- name: group_empty_input
SELECT dept, count(*) FROM people WHERE age > 1000 GROUP BY dept;

-- name: group_constant
SELECT 1, count(*) FROM people GROUP BY 1;

-- name: group_null_group_only
SELECT dept, count(*) FROM people WHERE dept IS NULL GROUP BY dept;

-- name: group_id_modulo
SELECT id % 7, count(*), sum(id) FROM people GROUP BY id % 7;

-- ===== ORDER BY (directions, NULLS, several keys, expressions, aliases, ordinals) with LIMIT/OFFSET =====

-- name: order_id_limit
-- ordered
SELECT id, name FROM people ORDER BY id LIMIT 10;

-- name: order_id_desc_limit
-- ordered
SELECT id, name FROM people ORDER BY id DESC LIMIT 10;

-- name: order_id_offset
-- ordered
SELECT id FROM people ORDER BY id LIMIT 10 OFFSET 100;

-- name: order_offset_only
-- ordered
SELECT id FROM people ORDER BY id OFFSET 19990;

-- name: order_full_filtered
-- ordered
SELECT id, name FROM people WHERE age = 50 ORDER BY id;

-- name: order_salary_desc_nulls_last
-- ordered
SELECT id, salary FROM people ORDER BY salary DESC NULLS LAST, id LIMIT 20;

-- name: order_salary_nulls_first
-- ordered
SELECT id, salary FROM people ORDER BY salary NULLS FIRST, id LIMIT 20;

-- name: order_age_desc_default_nulls
-- ordered
SELECT id, age FROM people ORDER BY age DESC, id LIMIT 15;

-- name: order_age_asc_default_nulls
-- ordered
SELECT id, age FROM people ORDER BY age, id DESC LIMIT 15 OFFSET 19980;

-- name: order_multi_keys
-- ordered
SELECT dept, age, id FROM people ORDER BY dept ASC NULLS FIRST, age DESC NULLS LAST, id LIMIT 30;

-- name: order_expression
-- ordered
SELECT id, name FROM people ORDER BY lower(name), id LIMIT 25;

-- name: order_alias
-- ordered
SELECT id, salary * 12 AS annual FROM people ORDER BY annual DESC NULLS LAST, id LIMIT 10;

-- name: order_ordinal
-- ordered
SELECT name, id FROM people ORDER BY 1, 2 LIMIT 30;

-- name: order_ordinal_desc
-- ordered
SELECT age, id FROM people WHERE age IS NOT NULL ORDER BY 1 DESC, 2 DESC LIMIT 12;

-- name: order_by_unselected
-- ordered
SELECT id FROM people ORDER BY joined DESC NULLS LAST, id LIMIT 10;

-- name: order_by_score
-- ordered
SELECT id, score FROM people ORDER BY score, id LIMIT 10;

-- name: order_by_score_desc
-- ordered
SELECT id, score FROM people ORDER BY score DESC NULLS LAST, id LIMIT 10;

-- name: order_by_bool
-- ordered
SELECT id, active FROM people ORDER BY active NULLS FIRST, id LIMIT 10;

-- name: order_by_case
-- ordered
SELECT id, dept FROM people ORDER BY CASE WHEN dept = 'eng' THEN 0 ELSE 1 END, id LIMIT 10;

-- name: order_limit_all
-- ordered
SELECT id FROM people WHERE age = 60 ORDER BY id LIMIT ALL;

-- name: order_limit_zero
-- ordered
SELECT id FROM people ORDER BY id LIMIT 0;

-- name: order_limit_param
-- ordered
-- args: 5
SELECT id FROM people ORDER BY id LIMIT $1;

-- name: order_limit_offset_params
-- ordered
-- args: 4, 8
SELECT id FROM people ORDER BY id DESC LIMIT $1 OFFSET $2;

-- name: order_fetch_first
-- ordered
SELECT id FROM people ORDER BY id FETCH FIRST 5 ROWS ONLY;

-- name: order_fetch_with_ties
SELECT id, age FROM people ORDER BY age FETCH FIRST 3 ROWS WITH TIES;

-- name: order_limit_no_order_count
SELECT count(*) FROM (SELECT id FROM people LIMIT 10) s;

-- name: order_limit_without_order_count_rows
SELECT count(*) FROM (SELECT id FROM people WHERE age = 20 LIMIT 5) s;

-- name: order_visits_amount
-- ordered
SELECT person_id, visit_id, amount FROM visits ORDER BY amount DESC NULLS LAST, visit_id, person_id LIMIT 10;

-- name: order_visits_at
-- ordered
SELECT visit_id, at FROM visits ORDER BY at NULLS FIRST, visit_id, person_id LIMIT 10;

-- name: order_visits_key
-- ordered
SELECT person_id, visit_id FROM visits ORDER BY person_id, visit_id LIMIT 20;

-- name: order_pinned_visits
-- ordered
SELECT visit_id, amount FROM visits WHERE person_id = 42 ORDER BY amount NULLS FIRST, visit_id;

-- name: order_in_list
-- ordered
SELECT id, salary FROM people WHERE id IN (300, 301, 302, 303) ORDER BY salary DESC NULLS FIRST, id;

-- name: order_filtered_limit
-- ordered
SELECT id, name, salary FROM people WHERE dept = 'élan' ORDER BY salary DESC NULLS LAST, id LIMIT 5;

-- ===== DISTINCT and DISTINCT ON =====

-- name: distinct_dept
SELECT DISTINCT dept FROM people;

-- name: distinct_dept_active
SELECT DISTINCT dept, active FROM people;

-- name: distinct_age_ordered
-- ordered
SELECT DISTINCT age FROM people ORDER BY 1 NULLS FIRST;

-- name: distinct_expression
SELECT DISTINCT extract(year FROM joined) FROM people;

-- name: distinct_lower_name
SELECT DISTINCT lower(name) FROM people;

-- name: distinct_key_visits
SELECT DISTINCT person_id FROM visits;

-- name: distinct_pinned
SELECT DISTINCT note FROM visits WHERE person_id = 42;

-- name: distinct_star_depts
SELECT DISTINCT * FROM depts;

-- name: distinct_limit
-- ordered
SELECT DISTINCT dept FROM people ORDER BY dept LIMIT 3;

-- name: distinct_on_dept
-- ordered
SELECT DISTINCT ON (dept) dept, id, salary FROM people ORDER BY dept, salary DESC NULLS LAST, id;

-- name: distinct_on_active
-- ordered
SELECT DISTINCT ON (active) active, id, joined FROM people ORDER BY active, joined NULLS LAST, id;

-- name: distinct_on_visits_key
-- ordered
SELECT DISTINCT ON (person_id) person_id, visit_id, amount FROM visits ORDER BY person_id, amount DESC NULLS LAST, visit_id LIMIT 50;

-- name: distinct_on_expression
-- ordered
SELECT DISTINCT ON (age / 10) age / 10, id, name FROM people ORDER BY age / 10, id;

-- name: distinct_on_pinned
-- ordered
SELECT DISTINCT ON (note) note, visit_id FROM visits WHERE person_id = 43 ORDER BY note, visit_id;

-- name: distinct_count_subquery
SELECT count(*) FROM (SELECT DISTINCT dept, age FROM people) s;

-- ===== Co-located joins people ⋈ visits on the key =====

-- name: join_pinned_where
SELECT p.name, v.visit_id, v.amount FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = 42;

-- name: join_pinned_param
-- args: 43
SELECT p.name, v.visit_id, v.amount FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = $1;

-- name: join_pinned_visits_side
SELECT p.name, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id WHERE v.person_id = 44;

-- name: join_pinned_both_sides
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = 45 AND v.person_id = 45;

-- name: join_pinned_comma
SELECT p.id, v.visit_id, v.note FROM people p, visits v WHERE v.person_id = p.id AND p.id = 46;

-- name: join_pinned_left
SELECT p.id, v.visit_id FROM people p LEFT JOIN visits v ON v.person_id = p.id WHERE p.id = 47;

-- name: join_pinned_left_no_visits
SELECT p.id, count(v.visit_id) FROM people p LEFT JOIN visits v ON v.person_id = p.id WHERE p.id = 99999999 GROUP BY p.id;

-- name: join_pinned_agg
-- args: 48
SELECT count(*), sum(v.amount), max(v.at) FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = $1;

-- name: join_pinned_group
SELECT p.name, count(*), sum(v.amount) FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = 49 GROUP BY p.name;

-- name: join_pinned_order_limit
-- ordered
SELECT v.visit_id, v.amount FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = 52 ORDER BY v.amount DESC NULLS LAST, v.visit_id LIMIT 1;

-- name: join_pinned_three_way
SELECT count(*) FROM people p JOIN visits v1 ON v1.person_id = p.id JOIN visits v2 ON v2.person_id = p.id WHERE p.id = 53;

-- name: join_pinned_negative_key
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id = -100;

-- name: join_pinned_in_list
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id WHERE p.id IN (54, 55, 56);

-- name: join_pinned_self
SELECT a.id, b.name FROM people a JOIN people b ON a.id = b.id WHERE a.id = 57;

-- name: join_pinned_lateral
SELECT p.id, l.total, l.n FROM people p, LATERAL (SELECT sum(amount) AS total, count(*) AS n FROM visits v WHERE v.person_id = p.id) l WHERE p.id = 58;

-- name: join_pinned_correlated_scalar
SELECT p.id, (SELECT count(*) FROM visits v WHERE v.person_id = p.id) FROM people p WHERE p.id = 59;

-- name: join_pinned_exists
SELECT p.id FROM people p WHERE p.id = 60 AND EXISTS (SELECT 1 FROM visits v WHERE v.person_id = p.id);

-- name: join_pinned_full
SELECT p.id, v.visit_id FROM people p FULL JOIN visits v ON v.person_id = p.id WHERE p.id = 61;

-- name: join_pinned_full_visits_side
SELECT p.id, v.visit_id FROM people p FULL JOIN visits v ON v.person_id = p.id WHERE v.person_id = 62;

-- name: join_pinned_left_is_null
SELECT p.id FROM people p LEFT JOIN visits v ON v.person_id = p.id WHERE p.id = 63 AND v.visit_id IS NULL;

-- name: join_right_pin_in_on
SELECT count(*), count(p.id) FROM people p RIGHT JOIN visits v ON v.person_id = p.id AND p.id = 42;

-- name: join_left_pin_in_on_people
SELECT count(*), count(v.visit_id) FROM people p LEFT JOIN visits v ON v.person_id = p.id AND p.id = 42;

-- name: join_left_pin_in_on_visits
SELECT count(*), count(v.visit_id) FROM people p LEFT JOIN visits v ON v.person_id = p.id AND v.person_id = 42;

-- name: join_left_pin_on_rows
SELECT p.id, v.visit_id FROM people p LEFT JOIN visits v ON v.person_id = p.id AND p.id = 42 WHERE p.age = 30;

-- name: join_full_pin_in_on
SELECT count(*) FROM people p FULL JOIN visits v ON v.person_id = p.id AND p.id = 42;

-- name: join_inner_pin_in_on
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id AND p.id = 64;

-- name: join_all_count
SELECT count(*) FROM people p JOIN visits v ON v.person_id = p.id;

-- name: join_all_rows_filtered
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id WHERE p.age = 30;

-- name: join_left_all_count
SELECT count(*), count(v.visit_id) FROM people p LEFT JOIN visits v ON v.person_id = p.id;

-- name: join_group_dept
SELECT p.dept, count(*), sum(v.amount) FROM people p JOIN visits v ON v.person_id = p.id GROUP BY p.dept;

-- name: join_sum_amount
SELECT sum(v.amount) FROM people p JOIN visits v ON v.person_id = p.id WHERE p.active;

-- name: join_semi_exists
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.person_id = p.id);

-- name: join_anti_not_exists
SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM visits v WHERE v.person_id = p.id);

-- name: join_in_subquery
SELECT count(*) FROM people WHERE id IN (SELECT person_id FROM visits);

-- name: join_lateral_unpinned
SELECT p.id, l.total FROM people p, LATERAL (SELECT sum(amount) AS total FROM visits v WHERE v.person_id = p.id) l WHERE p.age = 22;

-- name: join_correlated_scalar_unpinned
SELECT p.id, (SELECT count(*) FROM visits v WHERE v.person_id = p.id) FROM people p WHERE p.age = 23;

-- name: join_self_on_key
SELECT a.id, b.dept FROM people a JOIN people b ON a.id = b.id WHERE a.age = 24;

-- name: join_using_subquery
SELECT count(*) FROM people p JOIN (SELECT person_id AS id, amount FROM visits) v USING (id);

-- name: join_order_limit
-- ordered
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = p.id ORDER BY v.visit_id LIMIT 10;

-- name: join_visits_first
SELECT count(*) FROM visits v JOIN people p ON p.id = v.person_id WHERE p.dept = 'Eng';

-- ===== Joins that are not co-located (one side read first and broadcast to the shards of the other, or refused; never answered wrongly) =====

-- name: noncoloc_visit_id_count
SELECT count(*) FROM people p JOIN visits v ON p.id = v.visit_id;

-- name: noncoloc_visit_id_rows
SELECT p.id, v.person_id FROM people p JOIN visits v ON p.id = v.visit_id WHERE p.age = 31;

-- name: noncoloc_visit_id_pinned_people
SELECT p.id, v.person_id, v.amount FROM people p JOIN visits v ON p.id = v.visit_id WHERE p.id = 42;

-- name: noncoloc_visit_id_pinned_param
-- args: 43
SELECT p.id, v.person_id FROM people p JOIN visits v ON p.id = v.visit_id WHERE p.id = $1;

-- name: noncoloc_visit_id_pinned_literal_visit
SELECT p.id, v.person_id FROM people p JOIN visits v ON p.id = v.visit_id WHERE v.visit_id = 44;

-- name: noncoloc_visit_id_both_pinned
SELECT p.id, v.visit_id FROM people p JOIN visits v ON p.id = v.visit_id WHERE p.id = 45 AND v.person_id = 45;

-- name: noncoloc_comma
SELECT count(*) FROM people p, visits v WHERE p.id = v.visit_id AND p.dept = 'eng';

-- name: noncoloc_left
SELECT count(*), count(v.visit_id) FROM people p LEFT JOIN visits v ON p.id = v.visit_id;

-- name: noncoloc_in_subquery
SELECT count(*) FROM people WHERE id IN (SELECT visit_id FROM visits);

-- name: noncoloc_exists
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = p.id);

-- name: noncoloc_scalar_pinned
SELECT p.id, (SELECT count(*) FROM visits v WHERE v.visit_id = p.id) FROM people p WHERE p.id = 46;

-- name: noncoloc_self_nonkey
SELECT a.id, b.id FROM people a JOIN people b ON a.age = b.id WHERE a.id = 47;

-- name: noncoloc_self_nonkey_count
SELECT count(*) FROM people a JOIN people b ON a.age = b.id;

-- name: noncoloc_cross_join_pinned
SELECT p.id, v.visit_id FROM people p CROSS JOIN visits v WHERE p.id = 1 AND v.visit_id = 1;

-- name: noncoloc_cross_join_pins_different
SELECT p.id, v.visit_id FROM people p, visits v WHERE p.id = 2 AND v.person_id = 3;

-- name: noncoloc_key_to_nonkey_pinned
SELECT v.person_id, v.visit_id FROM visits v JOIN people p ON p.id = v.visit_id WHERE v.person_id = 48;

-- name: noncoloc_age_join
SELECT count(*) FROM people p JOIN visits v ON v.person_id = p.age;

-- name: noncoloc_scalar_max_other_table
SELECT id, (SELECT max(visit_id) FROM visits) FROM people WHERE id = 49;

-- name: bcast_outer_values_left
-- ordered
SELECT x, count(p.id) FROM (VALUES (20), (21), (999)) t(x) LEFT JOIN people p ON p.age = t.x GROUP BY x ORDER BY x;

-- name: bcast_outer_series_left_key
-- ordered
SELECT g, p.name FROM generate_series(1, 30) g LEFT JOIN people p ON p.id = g * 7 ORDER BY g;

-- name: bcast_outer_values_full
SELECT t.x, v.person_id FROM (VALUES (1), (2)) t(x) FULL JOIN visits v ON v.visit_id = t.x AND v.amount > 990;

-- name: bcast_left_nonkey_people_visits
-- ordered
SELECT p.id, count(v.visit_id) FROM people p LEFT JOIN visits v ON v.visit_id = p.id WHERE p.id < 40 GROUP BY p.id ORDER BY p.id;

-- name: bcast_right_nonkey
SELECT p.id, v.visit_id FROM people p RIGHT JOIN visits v ON v.visit_id = p.age WHERE v.person_id < 60;

-- name: bcast_full_nonkey_count
SELECT count(*), count(p.id), count(v.visit_id) FROM people p FULL JOIN visits v ON v.visit_id = p.id + 1000000;

-- name: bcast_self_join_dept_pinned_param
-- args: 77
SELECT b.id FROM people a JOIN people b ON a.dept = b.dept WHERE a.id = $1 AND b.age > 50;

-- name: bcast_self_join_age_counts
SELECT a.age, count(*) FROM people a JOIN people b ON b.age = a.age + 1 WHERE a.salary > 150000 GROUP BY a.age;

-- name: bcast_time_tables_join
SELECT e.id, d.id FROM events e JOIN days d ON d.day = e.day AND d.label = e.label;

-- name: bcast_time_tables_three_way
SELECT count(*), count(DISTINCT s.id) FROM events e JOIN days d ON d.id = e.id JOIN stamps s ON s.label = d.label WHERE e.id < 50;

-- name: bcast_people_events_on_time
-- ordered
SELECT p.id, e.id FROM people p JOIN events e ON e.at = p.joined ORDER BY 1, 2 LIMIT 20;

-- name: bcast_correlated_exists_other_table
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM events e WHERE e.label = p.name);

-- name: bcast_correlated_not_exists_nonkey
SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = p.id);

-- name: bcast_correlated_exists_filtered_nonkey
-- ordered
SELECT p.id FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = p.id AND v.amount > 500) AND p.id BETWEEN 100 AND 2000 ORDER BY p.id;

-- name: bcast_depts_join_group
-- ordered
SELECT d.dept, d.budget, count(p.id) FROM depts d LEFT JOIN people p ON p.dept = d.dept GROUP BY d.dept, d.budget ORDER BY 1;

-- name: bcast_using_nonkey
SELECT count(*) FROM people a JOIN people b USING (name) WHERE a.id < 500;

-- name: bcast_join_then_set_operation
SELECT p.id FROM people p JOIN visits v ON v.visit_id = p.id UNION SELECT id FROM people WHERE age = 33;

-- ===== Subqueries =====

-- name: sub_scalar_avg_same_table
SELECT count(*) FROM people WHERE age > (SELECT avg(age) FROM people);

-- name: sub_from_derived_group
SELECT d, c FROM (SELECT dept AS d, count(*) AS c FROM people GROUP BY dept) s WHERE c > 100;

-- name: sub_from_derived_rows
SELECT * FROM (SELECT id, name FROM people WHERE age = 26) s;

-- name: sub_from_pinned
SELECT * FROM (SELECT * FROM people WHERE id = 42) s;

-- name: sub_from_pinned_outer_filter
SELECT s.name FROM (SELECT * FROM people WHERE id = 43) s WHERE s.age > 0;

-- name: sub_generate_series_in
SELECT id, name FROM people WHERE id IN (SELECT x FROM generate_series(1, 10) x);

-- name: sub_any_generate_series
SELECT count(*) FROM people WHERE id = ANY(SELECT generate_series(1, 5));

-- name: sub_target_constant
SELECT id, (SELECT 1) FROM people WHERE age = 25;

-- name: sub_target_pinned_same_table
SELECT id, (SELECT max(salary) FROM people q WHERE q.id = 44) FROM people WHERE id = 44;

-- name: sub_correlated_pinned
SELECT count(*) FROM visits v WHERE v.person_id = 42 AND v.amount > (SELECT avg(amount) FROM visits w WHERE w.person_id = v.person_id);

-- name: sub_exists_uncorrelated_pinned
SELECT id FROM people WHERE id = 45 AND EXISTS (SELECT 1 FROM visits WHERE person_id = 45);

-- name: sub_in_pinned_subquery
SELECT id, name FROM people WHERE id IN (SELECT person_id FROM visits WHERE person_id = 46);

-- name: sub_not_in_values
SELECT count(*) FROM people WHERE age NOT IN (SELECT * FROM (VALUES (20), (30)) v(a));

-- name: sub_scalar_from_nothing
SELECT (SELECT count(*) FROM people);

-- name: sub_exists_people
SELECT EXISTS (SELECT 1 FROM people WHERE dept = 'R&D');

-- name: sub_outer_aggregate_in_subquery
SELECT (SELECT max(p.age)) FROM people p;

-- name: sub_nested_derived
SELECT count(*) FROM (SELECT * FROM (SELECT id FROM people WHERE active) a) b;

-- name: sub_union_in_from
SELECT count(*) FROM (SELECT id FROM people WHERE age = 20 UNION ALL SELECT id FROM people WHERE age = 21) u;

-- name: sub_limit_in_from
SELECT * FROM (SELECT id, salary FROM people ORDER BY salary DESC NULLS LAST, id LIMIT 5) t;

-- ===== CTEs =====

-- name: cte_pinned
WITH p AS (SELECT * FROM people WHERE id = 42) SELECT * FROM p;

-- name: cte_pinned_param
-- args: 43
WITH v AS (SELECT * FROM visits WHERE person_id = $1) SELECT count(*), sum(amount) FROM v;

-- name: cte_unpinned_count
WITH p AS (SELECT * FROM people WHERE age = 30) SELECT count(*) FROM p;

-- name: cte_group
-- ordered
WITH d AS (SELECT dept, count(*) AS c FROM people GROUP BY dept) SELECT * FROM d ORDER BY c DESC, dept NULLS LAST;

-- name: cte_join_pinned
WITH p AS (SELECT * FROM people WHERE id = 44), v AS (SELECT * FROM visits WHERE person_id = 44) SELECT p.name, v.visit_id FROM p JOIN v ON v.person_id = p.id;

-- name: cte_materialized_pinned
WITH p AS MATERIALIZED (SELECT id, salary FROM people WHERE id = 45) SELECT * FROM p;

-- name: cte_recursive_no_table
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r;

-- name: cte_recursive_with_people
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT count(*) FROM people, r WHERE people.id = r.n;

-- name: cte_shadows_table
WITH people AS (SELECT 1 AS id, 'shadow' AS name) SELECT * FROM people;

-- name: cte_scan_rows
WITH x AS (SELECT id, name FROM people WHERE dept = 'support' AND age = 45) SELECT * FROM x;

-- name: cte_aggregate_of_cte
WITH x AS (SELECT person_id, sum(amount) AS s FROM visits GROUP BY person_id) SELECT count(*), max(s) FROM x;

-- name: cte_pinned_window
-- ordered
WITH v AS (SELECT visit_id, amount FROM visits WHERE person_id = 46) SELECT visit_id, sum(amount) OVER (ORDER BY visit_id) FROM v ORDER BY visit_id;

-- name: cte_unused
WITH x AS (SELECT * FROM visits) SELECT count(*) FROM people WHERE id = 47;

-- ===== Window functions =====

-- name: win_pinned_row_number
SELECT visit_id, row_number() OVER (ORDER BY visit_id) FROM visits WHERE person_id = 42;

-- name: win_pinned_running_sum
-- ordered
SELECT visit_id, sum(amount) OVER (ORDER BY visit_id) FROM visits WHERE person_id = 43 ORDER BY visit_id;

-- name: win_pinned_param
-- args: 44
SELECT visit_id, rank() OVER (ORDER BY amount DESC NULLS LAST, visit_id) FROM visits WHERE person_id = $1;

-- name: win_rank_unpinned
SELECT id, rank() OVER (ORDER BY salary DESC NULLS LAST, id) FROM people WHERE age = 30;

-- name: win_partition_dept
SELECT id, dept, row_number() OVER (PARTITION BY dept ORDER BY id) FROM people WHERE age = 40;

-- name: win_count_all
SELECT id, count(*) OVER () FROM people WHERE age = 41;

-- name: win_lag_lead
SELECT id, lag(id) OVER (ORDER BY id), lead(salary) OVER (ORDER BY id) FROM people WHERE age = 42;

-- name: win_partition_by_key
SELECT person_id, visit_id, row_number() OVER (PARTITION BY person_id ORDER BY visit_id) FROM visits WHERE visit_id < 500;

-- name: win_sum_partition_by_key
SELECT person_id, visit_id, sum(amount) OVER (PARTITION BY person_id) FROM visits WHERE visit_id < 300;

-- name: win_ntile
SELECT id, ntile(4) OVER (ORDER BY id) FROM people WHERE dept = 'ñandú' AND age < 25;

-- name: win_first_value
SELECT id, first_value(name) OVER (PARTITION BY dept ORDER BY id) FROM people WHERE age = 43;

-- name: win_frame_avg
SELECT id, avg(salary) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM people WHERE id BETWEEN 1 AND 60;

-- name: win_top_per_dept
SELECT * FROM (SELECT id, dept, salary, row_number() OVER (PARTITION BY dept ORDER BY salary DESC NULLS LAST, id) AS rn FROM people) s WHERE rn <= 2;

-- name: win_named_window
SELECT id, sum(age) OVER w, count(*) OVER w FROM people WHERE age = 44 WINDOW w AS (ORDER BY id);

-- name: win_dense_rank_age
SELECT DISTINCT age, dense_rank() OVER (ORDER BY age) FROM people WHERE age IS NOT NULL;

-- name: win_over_group
SELECT dept, count(*), rank() OVER (ORDER BY count(*) DESC) FROM people GROUP BY dept;

-- name: win_percent_rank
SELECT id, percent_rank() OVER (ORDER BY id) FROM people WHERE age = 45 AND dept = 'eng';

-- name: win_count_filter_pinned
SELECT visit_id, count(*) FILTER (WHERE amount > 100) OVER () FROM visits WHERE person_id = 45;

-- ===== Text: ordering and comparison with accents and case (the servers use the same C.UTF-8 collation) =====

-- name: text_order_distinct_names
-- ordered
SELECT DISTINCT name FROM people WHERE name IS NOT NULL ORDER BY name;

-- name: text_order_names_desc
-- ordered
SELECT DISTINCT name FROM people ORDER BY name DESC NULLS LAST LIMIT 40;

-- name: text_order_lower
-- ordered
SELECT DISTINCT name, lower(name) FROM people WHERE name IS NOT NULL ORDER BY lower(name), name LIMIT 60;

-- name: text_order_collate_c
-- ordered
SELECT dept FROM people GROUP BY dept ORDER BY dept COLLATE "C" NULLS FIRST;

-- name: text_order_limit_rows
-- ordered
SELECT id, name FROM people ORDER BY name NULLS FIRST, id LIMIT 30;

-- name: text_min_max_name
SELECT min(name), max(name) FROM people;

-- name: text_min_max_dept
SELECT min(dept), max(dept) FROM people;

-- name: text_min_max_filtered
SELECT min(name), max(name) FROM people WHERE name LIKE 'É%' OR name LIKE 'E%';

-- name: text_upper_distinct
SELECT DISTINCT upper(name) FROM people;

-- name: text_group_case_sensitive
-- ordered
SELECT name, count(*) FROM people WHERE lower(name) IN ('alice', 'émile', 'zoë') GROUP BY name ORDER BY name;

-- name: text_like_accent_count
SELECT count(*) FROM people WHERE name LIKE '%é%';

-- name: text_ilike_accent_count
SELECT count(*) FROM people WHERE name ILIKE '%É%';

-- name: text_greater_than
SELECT count(*) FROM people WHERE name > 'Z';

-- name: text_between_accents
SELECT count(*) FROM people WHERE name BETWEEN 'a' AND 'é';

-- name: text_empty_vs_null
SELECT count(*) FILTER (WHERE name = ''), count(*) FILTER (WHERE name IS NULL), count(*) FILTER (WHERE dept = '') FROM people;

-- name: text_notes_order
-- ordered
SELECT DISTINCT note FROM visits ORDER BY note NULLS FIRST;

-- name: text_min_max_note
SELECT min(note), max(note) FROM visits;

-- name: text_max_length
SELECT max(length(name)), max(octet_length(name)) FROM people;

-- name: text_string_functions
SELECT id, initcap(name), reverse(name), left(name, 2), replace(name, 'é', 'e') FROM people WHERE id BETWEEN 400 AND 420;

-- name: text_order_by_length
-- ordered
SELECT id, name FROM people WHERE name IS NOT NULL ORDER BY length(name) DESC, name, id LIMIT 10;

-- ===== Numeric precision =====

-- name: num_sum_salary
SELECT sum(salary) FROM people;

-- name: num_sum_amount
SELECT sum(amount) FROM visits;

-- name: num_sum_amount_filtered
SELECT sum(amount) FROM visits WHERE note = 'ok';

-- name: num_sum_amount_negative
SELECT sum(amount), count(*) FROM visits WHERE amount < 0;

-- name: num_min_max_amount
SELECT min(amount), max(amount) FROM visits WHERE amount IS NOT NULL;

-- name: num_sum_divided
SELECT sum(amount) / 3 FROM visits;

-- name: num_round_sum
SELECT round(sum(amount), 2) FROM visits;

-- name: num_trailing_zeros
SELECT amount FROM visits WHERE amount = 100;

-- name: num_scale_group
SELECT scale(amount), count(*), sum(amount) FROM visits GROUP BY 1;

-- name: num_sum_scaled_product
SELECT sum(salary * 1.005) FROM people;

-- name: num_sum_large_ids
SELECT sum(id) FROM people WHERE id > 1000000000000;

-- name: num_sum_visit_ids
SELECT sum(visit_id), sum(visit_id::bigint * 1000000) FROM visits;

-- name: num_numeric_eq_text
SELECT count(*) FROM visits WHERE amount::text LIKE '%.0';

-- name: num_avg_amount_rounded
SELECT round(avg(amount), 6) FROM visits;

-- name: num_sum_salary_by_active
SELECT active, sum(salary) FROM people GROUP BY active;

-- name: num_salary_precision
SELECT id, salary, salary / 7, salary * 0.001 FROM people WHERE id IN (500, 501, 502);

-- ===== Timestamps =====

-- name: ts_min_max_joined
SELECT min(joined), max(joined) FROM people;

-- name: ts_range_count
SELECT count(*) FROM people WHERE joined BETWEEN '2018-01-01 00:00:00+00' AND '2018-12-31 23:59:59.999999+00';

-- name: ts_group_month
SELECT date_trunc('month', joined) AS m, count(*) FROM people WHERE joined >= '2024-01-01' GROUP BY m;

-- name: ts_extract_epoch_sum
SELECT sum(extract(epoch FROM joined)) FROM people;

-- name: ts_interval_arith
SELECT id, joined + interval '1 day', joined - interval '1 hour 30 minutes' FROM people WHERE id = 42;

-- name: ts_order
-- ordered
SELECT id, joined FROM people ORDER BY joined NULLS FIRST, id LIMIT 10;

-- name: ts_to_char
SELECT id, to_char(joined, 'YYYY-MM-DD HH24:MI:SS.US') FROM people WHERE id BETWEEN 600 AND 620;

-- name: ts_at_time_zone
SELECT id, joined AT TIME ZONE 'America/New_York' FROM people WHERE id BETWEEN 621 AND 630;

-- name: ts_interval_sum
SELECT sum(at - '2020-01-01 00:00:00+00') FROM visits;

-- name: ts_interval_max
SELECT max(at - '2020-01-01 00:00:00+00') FROM visits;

-- name: ts_max_visits_at
SELECT max(at), min(at) FROM visits WHERE note = 'late';

-- name: ts_date_eq
SELECT id FROM people WHERE joined::date = '2020-02-29';

-- name: ts_date_min_max
SELECT min(joined::date), max(joined::date) FROM people;

-- name: ts_microseconds
SELECT count(*) FROM people WHERE extract(microseconds FROM joined)::bigint % 1000000 <> 0;

-- name: ts_age_years
SELECT id, date_part('year', age(timestamptz '2030-01-01 00:00:00+00', joined)) FROM people WHERE id BETWEEN 700 AND 710;

-- name: ts_timestamp_cast_max
SELECT max(joined::timestamp), min(at::timestamp) FROM people, visits WHERE people.id = 42 AND visits.person_id = 42;

-- ===== NULL handling =====

-- name: null_count_star_vs_col
SELECT count(*), count(age), count(salary), count(name) FROM people WHERE dept IS NULL;

-- name: null_sum_all_null
SELECT sum(age), sum(salary), sum(score) FROM people WHERE age IS NULL AND salary IS NULL;

-- name: null_min_max_all_null
SELECT min(joined), max(name) FROM people WHERE joined IS NULL AND name IS NULL;

-- name: null_not_in_with_null
SELECT count(*) FROM people WHERE id NOT IN (1, NULL);

-- name: null_eq_null
SELECT count(*) FROM people WHERE dept = NULL;

-- name: null_coalesce_group
SELECT coalesce(dept, 'none'), count(*) FROM people GROUP BY 1;

-- name: null_order_first
-- ordered
SELECT id, dept FROM people ORDER BY dept NULLS FIRST, id LIMIT 8;

-- name: null_order_last_desc
-- ordered
SELECT id, dept FROM people ORDER BY dept DESC NULLS LAST, id LIMIT 8;

-- name: null_nullif
SELECT id, nullif(name, ''), nullif(dept, 'eng') FROM people WHERE id BETWEEN 800 AND 830;

-- name: null_count_distinct_ignores_nulls
SELECT count(DISTINCT active), count(DISTINCT dept) FROM people;

-- name: null_concat
SELECT id, name || NULL, concat(name, NULL, dept) FROM people WHERE id BETWEEN 831 AND 840;

-- name: null_in_list_with_null
SELECT count(*) FROM people WHERE dept IN ('eng', NULL);

-- name: null_bool_and_with_nulls
SELECT bool_and(active), bool_or(active) FROM people WHERE active IS NULL OR active;

-- name: null_rows_only
SELECT id FROM people WHERE name IS NULL AND dept IS NULL;

-- name: null_is_not_distinct
SELECT count(*) FROM people WHERE dept IS NOT DISTINCT FROM NULL;

-- name: null_greatest_least
SELECT id, greatest(age, 50), least(salary, 100000) FROM people WHERE id BETWEEN 841 AND 860;

-- name: null_pinned_all_columns
SELECT * FROM people WHERE id = (SELECT 1) AND name IS NULL;

-- ===== The reference table ranks (a copy on every worker) joined with distributed tables =====

-- name: ref_all
SELECT * FROM ranks;

-- name: ref_order
-- ordered
SELECT dept, floor, head FROM ranks ORDER BY dept NULLS FIRST, head;

-- name: ref_agg
SELECT count(*), count(dept), max(floor), sum(band_low), min(head) FROM ranks;

-- name: ref_group
SELECT floor, count(*), max(head) FROM ranks GROUP BY floor;

-- name: ref_window_only
SELECT dept, head, count(*) OVER (PARTITION BY floor) FROM ranks;

-- name: ref_self_join
SELECT a.dept, b.dept FROM ranks a JOIN ranks b ON a.floor = b.floor AND a.dept < b.dept;

-- name: ref_join_people
SELECT p.id, p.name, r.head FROM people p JOIN ranks r ON r.dept = p.dept;

-- name: ref_join_people_key
SELECT p.id, p.name, r.head, r.floor FROM people p JOIN ranks r ON r.dept = p.dept WHERE p.id = 42;

-- name: ref_join_people_param
-- args: 43
SELECT p.id, r.head FROM ranks r, people p WHERE r.dept = p.dept AND p.id = $1;

-- name: ref_join_ref_param
-- args: 'eng'
SELECT count(*), sum(p.salary) FROM people p JOIN ranks r ON r.dept = p.dept WHERE r.dept = $1;

-- name: ref_join_using
SELECT p.id, r.floor FROM people p JOIN ranks r USING (dept) WHERE p.age > 40;

-- name: ref_left_join
SELECT p.id, r.floor, r.head FROM people p LEFT JOIN ranks r ON r.dept = p.dept;

-- name: ref_right_join_preserves_ref
SELECT r.dept, r.head, p.id FROM people p RIGHT JOIN ranks r ON r.dept = p.dept AND p.age > 70;

-- name: ref_left_join_ref_first
SELECT r.dept, count(p.id) FROM ranks r LEFT JOIN people p ON p.dept = r.dept GROUP BY r.dept;

-- name: ref_full_join
SELECT count(*), count(p.id), count(r.dept) FROM people p FULL JOIN ranks r ON r.dept = p.dept;

-- name: ref_group_by_ref_column
SELECT r.floor, count(*), sum(p.salary) FROM people p JOIN ranks r USING (dept) GROUP BY r.floor;

-- name: ref_having
SELECT p.dept, count(*) FROM people p JOIN ranks r ON r.dept = p.dept GROUP BY p.dept HAVING count(*) > 2;

-- name: ref_avg
SELECT avg(r.floor), avg(p.salary), count(DISTINCT r.head) FROM people p JOIN ranks r ON r.dept = p.dept;

-- name: ref_order_limit
-- ordered
SELECT p.id, r.head FROM people p JOIN ranks r ON r.dept = p.dept ORDER BY p.id, r.head LIMIT 10;

-- name: ref_order_by_ref_column
-- ordered
SELECT r.floor, p.id, r.head FROM people p JOIN ranks r ON r.dept = p.dept ORDER BY r.floor DESC, p.id, r.head LIMIT 15 OFFSET 3;

-- name: ref_distinct
SELECT DISTINCT r.head FROM people p JOIN ranks r ON r.dept = p.dept;

-- name: ref_in_subquery
SELECT id FROM people WHERE dept IN (SELECT dept FROM ranks WHERE floor = 1);

-- name: ref_not_in_subquery
SELECT count(*) FROM people WHERE dept NOT IN (SELECT dept FROM ranks WHERE dept IS NOT NULL);

-- name: ref_not_exists
SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM ranks r WHERE r.dept = p.dept);

-- name: ref_scalar_subquery
SELECT id, (SELECT max(floor) FROM ranks r WHERE r.dept = p.dept) FROM people p WHERE id < 50;

-- name: ref_range_join
SELECT p.id, r.dept FROM people p JOIN ranks r ON p.salary BETWEEN r.band_low AND r.band_high WHERE p.age > 60;

-- name: ref_three_way
SELECT p.id, v.visit_id, r.floor FROM people p JOIN visits v ON v.person_id = p.id JOIN ranks r ON r.dept = p.dept WHERE v.amount > 100;

-- name: ref_three_way_count
SELECT r.floor, count(*), sum(v.amount) FROM visits v JOIN people p ON p.id = v.person_id JOIN ranks r ON r.dept = p.dept GROUP BY r.floor;

-- name: ref_from_subquery
SELECT p.id, x.h FROM people p JOIN (SELECT dept, upper(head) AS h FROM ranks WHERE floor < 3) x ON x.dept = p.dept;

-- name: ref_lateral
SELECT p.id, l.head FROM people p, LATERAL (SELECT head FROM ranks r WHERE r.dept = p.dept ORDER BY head LIMIT 1) l WHERE p.id < 100;

-- name: ref_drives_subquery_on_distributed
SELECT dept FROM ranks WHERE dept IN (SELECT dept FROM people WHERE age > 50);

-- name: ref_exists_distributed
SELECT r.dept, r.head FROM ranks r WHERE EXISTS (SELECT 1 FROM people p WHERE p.dept = r.dept AND p.id = 42);

-- name: ref_cte
WITH r AS (SELECT * FROM ranks WHERE floor > 0) SELECT p.id FROM people p JOIN r ON r.dept = p.dept;

-- name: ref_union
SELECT dept FROM ranks UNION SELECT dept FROM people;

-- name: ref_join_ordinary
SELECT r.dept, d.budget FROM ranks r JOIN depts d USING (dept);

-- ===== The ordinary table depts (only on the metadata database) and no table at all =====

-- name: depts_all
SELECT * FROM depts;

-- name: depts_order
-- ordered
SELECT dept, budget FROM depts ORDER BY budget DESC;

-- name: depts_sum
SELECT sum(budget), count(*), min(dept), max(dept) FROM depts;

-- name: no_table_constant
SELECT 1 + 1, 'é' || 'ü';

-- name: no_table_values
VALUES (1, 'a'), (2, 'b');

-- name: depts_join_people_pinned
SELECT p.id, d.budget FROM people p JOIN depts d ON d.dept = p.dept WHERE p.id = 42;

-- name: depts_join_people_unpinned
SELECT d.dept, count(*) FROM people p JOIN depts d ON d.dept = p.dept GROUP BY d.dept;

-- name: depts_in_subquery
SELECT count(*) FROM people WHERE dept IN (SELECT dept FROM depts WHERE budget > 50000);

-- name: depts_not_in_with_null
SELECT count(*) FROM people WHERE dept NOT IN (SELECT dept FROM depts);

-- name: depts_scalar_subquery_pinned
SELECT id, (SELECT budget FROM depts d WHERE d.dept = p.dept) FROM people p WHERE p.id = 43;

-- ===== Set operations =====

-- name: set_union_pinned_two_keys
SELECT id FROM people WHERE id = 1 UNION SELECT id FROM people WHERE id = 2;

-- name: set_union_all_same_key
SELECT id, name FROM people WHERE id = 3 UNION ALL SELECT person_id, note FROM visits WHERE person_id = 3;

-- name: set_union_scan
SELECT dept FROM people UNION SELECT dept FROM depts;

-- name: set_union_all_scans
SELECT age FROM people WHERE age = 20 UNION ALL SELECT age FROM people WHERE age = 21;

-- name: set_intersect
SELECT dept FROM people INTERSECT SELECT dept FROM depts;

-- name: set_except
SELECT dept FROM depts EXCEPT SELECT dept FROM people;

-- name: set_union_visits_people_keys
SELECT id FROM people WHERE id = 42 UNION SELECT person_id FROM visits WHERE person_id = 42;

-- name: set_union_order_limit
-- ordered
SELECT id FROM people WHERE age = 20 UNION SELECT id FROM people WHERE age = 21 ORDER BY 1 LIMIT 5;

-- name: set_union_keys_aligned
SELECT id, name FROM people WHERE age < 30 UNION SELECT person_id, note FROM visits WHERE amount > 500;

-- name: set_intersect_all_keys_aligned
SELECT person_id, note FROM visits INTERSECT ALL SELECT person_id, note FROM visits WHERE visit_id % 2 = 0;

-- name: set_except_all_keys_aligned_param
-- args: 300
SELECT person_id, amount FROM visits EXCEPT ALL SELECT person_id, amount FROM visits WHERE amount > $1;

-- name: set_intersect_all_nulls_dups
SELECT note FROM visits INTERSECT ALL SELECT note FROM visits WHERE amount IS NULL OR note IS NULL;

-- name: set_except_all_nulls_dups
-- ordered
SELECT note, count(*) FROM (SELECT note FROM visits EXCEPT ALL SELECT note FROM visits WHERE visit_id % 3 = 0) s GROUP BY note ORDER BY 1 NULLS FIRST;

-- name: set_except_nulls
-- ordered
SELECT dept FROM people EXCEPT SELECT note FROM visits ORDER BY 1 NULLS FIRST;

-- name: set_union_timestamptz_order_limit
-- ordered
SELECT at FROM visits WHERE amount > 900 UNION SELECT joined FROM people WHERE age > 60 ORDER BY 1 DESC NULLS LAST LIMIT 15 OFFSET 2;

-- name: set_union_all_time_keys
SELECT at, label FROM events UNION ALL SELECT stamp::timestamptz, label FROM stamps UNION ALL SELECT day::timestamptz, label FROM days;

-- name: set_intersect_time_tables
-- ordered
SELECT label FROM events INTERSECT SELECT label FROM days EXCEPT SELECT label FROM stamps WHERE id % 2 = 0 ORDER BY 1;

-- name: set_union_arm_order_limit
-- ordered
(SELECT id FROM people ORDER BY salary DESC NULLS LAST, id LIMIT 3) UNION ALL (SELECT person_id FROM visits ORDER BY amount NULLS LAST, person_id, visit_id LIMIT 3) ORDER BY 1;

-- name: set_union_in_from_count
SELECT count(*), count(DISTINCT s.n) FROM (SELECT dept AS n FROM people UNION ALL SELECT note FROM visits) s;

-- name: set_except_in_from_join
SELECT p.id, p.name FROM people p JOIN (SELECT person_id FROM visits WHERE amount > 990 EXCEPT SELECT id FROM people WHERE age < 30) s ON s.person_id = p.id;

-- name: set_intersect_in_in_subquery
SELECT id, dept FROM people WHERE dept IN (SELECT note FROM visits INTERSECT SELECT dept FROM people WHERE age > 50);

-- name: set_union_in_in_subquery_param
-- args: 20
SELECT count(*) FROM visits WHERE person_id IN (SELECT id FROM people WHERE age = $1 UNION SELECT person_id FROM visits WHERE amount < 10);

-- name: set_union_in_cte
WITH u AS (SELECT dept AS d FROM people UNION SELECT note FROM visits) SELECT count(*), count(d), min(d) FROM u;

-- name: set_except_all_in_cte_ordered
-- ordered
WITH u (k) AS (SELECT age FROM people EXCEPT ALL SELECT visit_id % 80 FROM visits) SELECT k, count(*) FROM u GROUP BY k ORDER BY k NULLS FIRST;

-- name: set_union_ordinary_and_distributed_ordered
-- ordered
SELECT dept FROM depts UNION ALL SELECT dept FROM people WHERE id = 17 UNION ALL SELECT note FROM visits WHERE person_id = 17 ORDER BY 1 NULLS FIRST;

-- ===== Miscellaneous =====

-- name: misc_count_after_load_people
SELECT count(*) FROM people;

-- name: misc_count_after_load_visits
SELECT count(*) FROM visits;

-- name: misc_keys_checksum
SELECT sum(id), sum(id::numeric * id) FROM people;

-- name: misc_visits_checksum
SELECT sum(person_id), sum(visit_id::bigint * visit_id), sum(amount) FROM visits;

-- name: misc_table_alias_star
SELECT p.* FROM people p WHERE p.age = 77 AND p.dept = 'eng';

-- name: misc_param_limit_nonkey
-- ordered
-- args: 'Sales', 3
SELECT id FROM people WHERE dept = $1 ORDER BY id LIMIT $2;

-- name: misc_row_constructor
SELECT id FROM people WHERE (id, age) = (900, (SELECT age FROM people WHERE id = 900));

-- name: misc_tableoid_free_cast
SELECT id::text || ':' || coalesce(name, '') FROM people WHERE id BETWEEN 901 AND 910;

-- name: misc_json_build
SELECT json_build_object('id', id, 'name', name, 'joined', joined) FROM people WHERE id BETWEEN 911 AND 915;

-- name: misc_array_functions
SELECT id, string_to_array(name, ' ') FROM people WHERE id BETWEEN 916 AND 925;

-- name: misc_generate_series_join_pinned
SELECT g, p.name FROM generate_series(1, 3) g, people p WHERE p.id = 926;

-- name: misc_values_join_unpinned
SELECT v.x, p.name FROM (VALUES (927), (928)) v(x) JOIN people p ON p.id = v.x;

-- name: misc_count_pinned
SELECT count(*) FROM people WHERE id = 929;

-- name: misc_count_two_tables_pinned_same_shard
SELECT (SELECT count(*) FROM people WHERE id = 930), (SELECT count(*) FROM visits WHERE person_id = 930);

-- ===== Shard pruning by key lists (a Scatter plan may run on the shards of the listed keys only) =====

-- name: prune_in_literals_rows
SELECT id, name FROM people WHERE id IN (1000, 2000, 3000);

-- name: prune_in_params
-- args: 1001, 2001
SELECT id, salary FROM people WHERE id IN ($1, $2) AND age IS NOT NULL;

-- name: prune_any_slice_param
-- args: [1002, 2002, 3002, -1050]
SELECT id, dept FROM people WHERE id = ANY($1);

-- name: prune_any_slice_param_empty
-- args: []
SELECT count(*) FROM people WHERE id = ANY($1);

-- name: prune_any_slice_param_grouped
-- args: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
SELECT dept, count(*) FROM people WHERE id = ANY($1) GROUP BY dept;

-- name: prune_any_string_slice_param
-- args: ['1003', '2003']
SELECT id FROM people WHERE id = ANY($1::bigint[]);

-- name: prune_any_array_cast
SELECT id FROM people WHERE id = ANY(ARRAY[1004, 2004]::int[]);

-- name: prune_in_int4_casts
SELECT id FROM people WHERE id IN (1005::int, 2005::smallint, 3005::bigint);

-- name: prune_in_text_literals
SELECT id FROM people WHERE id IN ('1006', '2006');

-- name: prune_in_decimal_literals
SELECT id FROM people WHERE id IN (1007.0, 2007.0, 3007.5);

-- name: prune_in_mixed_numeric
SELECT id FROM people WHERE id IN (1008, 2008.0);

-- name: prune_in_with_null_only
SELECT count(*) FROM people WHERE id IN (NULL);

-- name: prune_in_large_values
SELECT id FROM people WHERE id IN (2147483648, -2147483649, 1000000000970);

-- name: prune_two_in_lists
SELECT id FROM people WHERE id IN (1009, 1010) AND id IN (1010, 1011);

-- name: prune_disjoint_in_lists
SELECT count(*) FROM people WHERE id IN (1012) AND id IN (1013);

-- name: prune_in_or_other
SELECT count(*) FROM people WHERE id IN (1014, 1015) OR age = 18;

-- name: prune_not_in
SELECT count(*) FROM people WHERE NOT (id IN (1016, 1017));

-- name: prune_in_is_not_true
SELECT count(*) FROM people WHERE (id IN (1018, 1019)) IS NOT TRUE;

-- name: prune_in_negated_any
SELECT count(*) FROM people WHERE NOT id = ANY(ARRAY[1020, 1021]);

-- name: prune_in_order_limit
-- ordered
SELECT id, salary FROM people WHERE id IN (1022, 1023, 1024, 1025) ORDER BY salary DESC NULLS LAST, id LIMIT 2;

-- name: prune_in_sum
SELECT count(*), sum(salary), sum(score) FROM people WHERE id IN (1026, 1027, -1050, 1000000001067);

-- name: prune_in_avg_minmax
SELECT avg(salary), min(name), max(joined) FROM people WHERE id IN (1028, 1029, 1030);

-- name: prune_in_distinct
SELECT DISTINCT dept FROM people WHERE id IN (1031, 1032, 1033, 1034);

-- name: prune_in_window
SELECT id, row_number() OVER (ORDER BY id) FROM people WHERE id IN (1035, 1036, 1037);

-- name: prune_visits_any_param
-- args: [42, 43, 44, 45, 46]
SELECT person_id, count(*), sum(amount) FROM visits WHERE person_id = ANY($1) GROUP BY person_id;

-- name: prune_or_keys_group
SELECT active, count(*) FROM people WHERE id = 1038 OR id = 1039 OR id = 1040 GROUP BY active;

-- name: prune_in_subselect_const
SELECT count(*) FROM people WHERE id IN (SELECT 1041 UNION SELECT 1042);

-- name: prune_key_in_and_eq_param
-- args: 1044
SELECT id FROM people WHERE id IN (1043, 1044) AND id = $1;

-- ===== Parameters in multi-shard queries (WHERE on the shards, HAVING/LIMIT/target on the combine step) =====

-- name: param_having_only
-- args: 1900
SELECT dept, count(*) FROM people GROUP BY dept HAVING count(*) > $1;

-- name: param_where_and_having
-- args: 60, 320
SELECT age, count(*) FROM people WHERE age > $1 GROUP BY age HAVING count(*) > $2;

-- name: param_target_grouped
-- args: 'x'
SELECT dept, $1::text, count(*) FROM people GROUP BY dept;

-- name: param_target_aggregate_arg
-- args: 2
SELECT dept, sum(age * $1) FROM people GROUP BY dept;

-- name: param_simple_sum_arg
-- args: 3
SELECT sum(age * $1), count(*) FROM people;

-- name: param_avg_where
-- args: 'sales'
SELECT avg(salary) FROM people WHERE dept = $1;

-- name: param_limit_only
-- ordered
-- args: 3
SELECT id FROM people ORDER BY id LIMIT $1;

-- name: param_offset_only
-- ordered
-- args: 19995
SELECT id FROM people ORDER BY id OFFSET $1;

-- name: param_limit_const_offset
-- ordered
-- args: 3
SELECT id FROM people ORDER BY id LIMIT $1 OFFSET 5;

-- name: param_const_limit_offset
-- ordered
-- args: 5
SELECT id FROM people ORDER BY id LIMIT 3 OFFSET $1;

-- name: param_limit_offset_cast
-- ordered
-- args: 3, 5
SELECT id FROM people ORDER BY id LIMIT $1::int OFFSET $2::int;

-- name: param_where_limit_offset
-- ordered
-- args: 30, 4, 2
SELECT id FROM people WHERE age = $1 ORDER BY id LIMIT $2 OFFSET $3;

-- name: param_group_limit
-- ordered
-- args: 4
SELECT dept, count(*) FROM people GROUP BY dept ORDER BY dept LIMIT $1;

-- name: param_distinct_where
-- args: 70
SELECT DISTINCT dept FROM people WHERE age > $1;

-- name: param_window_where
-- args: 33, 'Sales'
SELECT id, rank() OVER (ORDER BY id) FROM people WHERE age = $1 AND dept = $2;

-- name: param_having_avg_numeric
-- args: 48.5
SELECT dept FROM people GROUP BY dept HAVING avg(age) > $1;

-- name: param_in_group_expression
-- args: 20
SELECT age / $1, count(*) FROM people GROUP BY age / $1;

-- name: param_same_twice
-- args: 60
SELECT count(*) FROM people WHERE age > $1 OR salary > $1 * 4000;

-- name: param_unused_in_select
-- args: 1
SELECT count(*) FROM people WHERE $1::int IS NOT NULL;

-- ===== Output column names of combined answers (PostgreSQL's FigureColname) =====

-- name: name_case_text_default
SELECT dept, CASE WHEN count(*) > 1000 THEN 'many' ELSE 'few'::text END FROM people GROUP BY dept;

-- name: name_case_no_default
SELECT dept, CASE WHEN count(*) > 1000 THEN 'many' END FROM people GROUP BY dept;

-- name: name_case_column_default
SELECT dept, CASE WHEN count(*) > 1000 THEN 'x' ELSE min(name) END FROM people GROUP BY dept;

-- name: name_casts
SELECT count(*)::int, sum(age)::numeric, max(salary)::text, (count(*) + 1)::bigint FROM people GROUP BY dept;

-- name: name_operators
SELECT -max(age), count(*) * 2, max(age) IS NULL, NOT bool_or(active) FROM people GROUP BY dept;

-- name: name_functions
SELECT coalesce(max(age), 0), nullif(min(age), 18), greatest(max(age), 50), round(avg(age), 1), abs(min(score)) FROM people GROUP BY dept;

-- name: name_extract_of_agg
SELECT extract(year FROM max(joined)), date_trunc('year', min(joined)) FROM people GROUP BY dept;

-- name: name_xmlelement
SELECT xmlelement(name d, count(*))::text FROM people GROUP BY dept;

-- name: name_row_array
SELECT ARRAY[min(age), max(age)], ROW(min(age), max(age))::text FROM people GROUP BY dept;

-- name: name_subscript
SELECT (array_agg(id ORDER BY id))[1] FROM people GROUP BY dept;

-- name: name_alias_quoted
SELECT count(*) AS "Count", max(age) AS "max age" FROM people;

-- name: name_exists_sublink
SELECT dept, EXISTS (SELECT 1) FROM people GROUP BY dept;

-- name: name_scalar_sublink
SELECT dept, (SELECT 1 AS one) FROM people GROUP BY dept;

-- name: name_collate
SELECT min(name COLLATE "C"), max(dept) COLLATE "C" FROM people GROUP BY active;

-- name: name_same_twice
SELECT count(*), count(*), sum(age) AS count FROM people GROUP BY dept;

-- name: name_current_date_free
SELECT dept, count(*) > 0 AND current_date > '2000-01-01' FROM people GROUP BY dept;

-- ===== Grouping-expression matching (qualified and unqualified names, aliases, functional dependence) =====

-- name: group_qualified_target_unqualified_group
SELECT people.dept, count(*) FROM people GROUP BY dept;

-- name: group_unqualified_target_alias_group
SELECT dept, count(*) FROM people p GROUP BY p.dept;

-- name: group_schema_qualified
SELECT public.people.dept, count(*) FROM public.people GROUP BY public.people.dept;

-- name: group_function_case
SELECT LOWER(dept), count(*) FROM people GROUP BY lower(dept);

-- name: group_function_qualified_arg
SELECT lower(dept), count(*) FROM people GROUP BY lower(people.dept);

-- name: group_parenthesized
SELECT (dept), count(*) FROM people GROUP BY (dept);

-- name: group_expression_of_group
SELECT age / 10 * 10, 1 + age / 10, count(*) FROM people GROUP BY age / 10;

-- name: group_alias_shadowing_input
SELECT lower(dept) AS dept, count(*) FROM people GROUP BY dept;

-- name: group_order_by_shadowing_alias
-- ordered
SELECT lower(dept) AS dept, count(*) FROM people GROUP BY 1 ORDER BY dept NULLS FIRST;

-- name: group_order_by_unselected_group
-- ordered
SELECT count(*) FROM people GROUP BY dept ORDER BY dept NULLS LAST;

-- name: group_order_by_unselected_aggregate
-- ordered
SELECT dept FROM people GROUP BY dept ORDER BY max(salary) DESC NULLS LAST, dept;

-- name: group_functional_dependency
SELECT id, name, count(*) FROM people WHERE age = 30 GROUP BY id;

-- name: group_functional_dependency_order
-- ordered
SELECT id, name FROM people GROUP BY id ORDER BY name NULLS FIRST, id LIMIT 10;

-- name: group_having_no_aggregate
SELECT dept FROM people GROUP BY dept HAVING dept LIKE 'e%';

-- name: group_having_subquery
SELECT dept, count(*) FROM people GROUP BY dept HAVING count(*) > (SELECT 1500);

-- name: group_not_selected
SELECT count(*) FROM people GROUP BY dept;

-- name: group_distinct_grouped
SELECT DISTINCT dept, count(*) > 900 FROM people GROUP BY dept, active;

-- name: group_distinct_order_limit
-- ordered
SELECT DISTINCT count(*) FROM people GROUP BY age ORDER BY 1 DESC LIMIT 3;

-- name: group_by_key_order_limit
-- ordered
SELECT person_id, sum(amount) FROM visits GROUP BY person_id ORDER BY 2 DESC NULLS LAST, 1 LIMIT 5;

-- name: group_empty_grouping_set
SELECT count(*), sum(age) FROM people GROUP BY ();

-- name: group_window_over_aggregate_partition
SELECT dept, active, count(*), sum(count(*)) OVER (PARTITION BY dept) FROM people GROUP BY dept, active;

-- ===== Types through the combine step (grouping expressions computed on the shards, re-read from text) =====

-- name: type_bit
SELECT (age % 8)::bit(3), count(*) FROM people GROUP BY 1;

-- name: type_varbit
SELECT (age % 8)::bit(3)::varbit, count(*) FROM people GROUP BY 1;

-- name: type_bit_two_groups
SELECT dept, (age % 4)::bit(2), count(*) FROM people GROUP BY 1, 2;

-- name: type_char_quoted
SELECT left(name, 1)::"char", count(*) FROM people GROUP BY 1;

-- name: type_varchar_n
SELECT name::varchar(3), count(*) FROM people GROUP BY 1;

-- name: type_char_n
SELECT name::char(4), count(*) FROM people GROUP BY 1;

-- name: type_char_n_min
SELECT dept, min(name::char(4)), max(name::char(4)) FROM people GROUP BY dept;

-- name: type_bytea
SELECT convert_to(name, 'UTF8'), count(*) FROM people GROUP BY 1;

-- name: type_bytea_nul
SELECT convert_to(dept, 'UTF8') || '\x00ff'::bytea, count(*) FROM people GROUP BY 1;

-- name: type_uuid
SELECT md5(coalesce(dept, ''))::uuid, count(*) FROM people GROUP BY 1;

-- name: type_jsonb
SELECT jsonb_build_object('d', dept, 'a', active), count(*) FROM people GROUP BY 1;

-- name: type_int2
SELECT age::int2, sum(age::int2), count(*) FROM people GROUP BY 1;

-- name: type_real_group
SELECT (score / 7)::real, count(*) FROM people WHERE id < 300 GROUP BY 1;

-- name: type_real_sum_small
SELECT sum(score::real) FROM people WHERE id BETWEEN 1 AND 40;

-- name: type_real_avg
SELECT avg(score::real) FROM people;

-- name: type_real_avg_grouped
SELECT dept, avg(score::real) FROM people GROUP BY dept;

-- name: type_real_min_max
SELECT min(score::real), max(score::real) FROM people;

-- name: type_numeric_typmod
SELECT round(salary, -3)::numeric(12,1), count(*) FROM people GROUP BY 1;

-- name: type_time
SELECT joined::time(0) > '12:00', count(*), max(joined::time) FROM people GROUP BY 1;

-- name: type_timetz_max
SELECT max(joined::timetz) FROM people;

-- name: type_interval_group
SELECT justify_interval(date_trunc('day', joined - timestamptz '2015-01-01 00:00:00+00')) AS d, count(*) FROM people WHERE id < 200 GROUP BY 1;

-- name: type_interval_avg
SELECT avg(at - timestamptz '2020-01-01 00:00:00+00') FROM visits;

-- name: type_interval_avg_grouped
SELECT note, avg(at - timestamptz '2020-01-01 00:00:00+00'), max(at - timestamptz '2020-01-01 00:00:00+00') FROM visits GROUP BY note;

-- name: type_date_group
SELECT joined::date, count(*) FROM people WHERE joined < '2015-03-01' GROUP BY 1;

-- name: type_timestamp_group
SELECT date_trunc('hour', joined::timestamp), count(*) FROM people WHERE joined < '2015-02-01' GROUP BY 1;

-- name: type_inet
SELECT ('10.0.0.' || (age % 5))::inet, count(*) FROM people GROUP BY 1;

-- name: type_int4range
SELECT int4range(age / 10 * 10, age / 10 * 10 + 10), count(*) FROM people GROUP BY 1;

-- name: type_text_array
SELECT string_to_array(name, ' '), count(*) FROM people GROUP BY 1;

-- name: type_text_array_max
SELECT dept, max(string_to_array(name, ' ')) FROM people GROUP BY dept;

-- name: type_int_array
SELECT ARRAY[age / 10, age % 3], count(*) FROM people GROUP BY 1;

-- name: type_bool_array
SELECT ARRAY[active, age > 40], count(*) FROM people GROUP BY 1;

-- name: type_record
SELECT (dept, active), count(*) FROM people GROUP BY 1;

-- name: type_money
SELECT (age * 100)::money, count(*) FROM people GROUP BY 1;

-- name: type_oid
SELECT age::oid, count(*) FROM people GROUP BY 1;

-- name: type_name
SELECT dept::name, count(*) FROM people GROUP BY 1;

-- name: type_tsvector
SELECT to_tsvector('simple', coalesce(dept, '')), count(*) FROM people GROUP BY 1;

-- name: type_xml_text
SELECT xmlelement(name n, name)::text, count(*) FROM people WHERE id < 100 GROUP BY 1;

-- name: type_float_special_max
SELECT dept, max(CASE WHEN id % 1000 = 1 THEN 'NaN'::float8 ELSE score END), min(CASE WHEN id % 1000 = 2 THEN '-Infinity'::float8 ELSE score END) FROM people GROUP BY dept;

-- name: type_float_special_sum
SELECT sum(CASE WHEN id = 42 THEN 'Infinity'::float8 ELSE score END), max(CASE WHEN id = 43 THEN 'NaN'::float8 ELSE score END) FROM people;

-- name: type_float_special_avg
SELECT avg(CASE WHEN id = 44 THEN 'Infinity'::float8 ELSE score END) FROM people;

-- name: type_float_nan_plain_max
SELECT max(CASE WHEN id = 45 THEN 'NaN'::float8 ELSE score END), min(CASE WHEN id = 46 THEN '-Infinity'::float8 ELSE score END) FROM people;

-- name: type_numeric_nan_sum
SELECT sum(CASE WHEN id = 47 THEN 'NaN'::numeric ELSE salary END) FROM people;

-- name: type_numeric_infinity_sum
SELECT sum(CASE WHEN id = 48 THEN 'Infinity'::numeric ELSE salary END), max(CASE WHEN id = 49 THEN '-Infinity'::numeric ELSE salary END) FROM people;

-- name: type_numeric_infinity_avg
SELECT avg(CASE WHEN id = 50 THEN 'Infinity'::numeric ELSE salary END) FROM people;

-- name: type_timestamp_infinity
SELECT max(CASE WHEN id = 51 THEN 'infinity'::timestamptz ELSE joined END), min(CASE WHEN id = 52 THEN '-infinity'::timestamptz ELSE joined END) FROM people;

-- name: type_timestamp_infinity_grouped
SELECT active, max(CASE WHEN id % 997 = 0 THEN 'infinity'::timestamptz ELSE joined END) FROM people GROUP BY active;

-- name: type_bigint_sum_overflow_numeric
SELECT sum(id * 1000000) FROM people WHERE id > 1000000000000;

-- name: type_int_sum_bigint
SELECT sum(2000000000 + age) FROM people;

-- ===== Collations other than the database default (ICU und-x-icu orders a < B; C.UTF-8 orders B < a) =====

-- name: coll_icu_min_max
SELECT min(name COLLATE "und-x-icu"), max(name COLLATE "und-x-icu") FROM people WHERE name <> '';

-- name: coll_icu_min_max_small
SELECT min(name COLLATE "und-x-icu"), max(name COLLATE "und-x-icu") FROM people WHERE id BETWEEN 1 AND 40;

-- name: coll_icu_min_grouped
SELECT dept, min(name COLLATE "und-x-icu"), max(name COLLATE "und-x-icu") FROM people WHERE id < 500 GROUP BY dept;

-- name: coll_icu_order_limit
-- ordered
SELECT id, name FROM people ORDER BY name COLLATE "und-x-icu" NULLS FIRST, id LIMIT 15;

-- name: coll_default_order_distinct
-- ordered
SELECT DISTINCT dept FROM people ORDER BY 1;

-- name: coll_icu_group_order
-- ordered
SELECT lower(name) COLLATE "und-x-icu" AS n, count(*) FROM people GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT 20;

-- name: coll_icu_string_agg
SELECT string_agg(dept, ',' ORDER BY dept COLLATE "und-x-icu") FROM (SELECT DISTINCT dept FROM depts) d;

-- name: coll_icu_where
SELECT count(*) FROM people WHERE name COLLATE "und-x-icu" < 'b';

-- name: coll_icu_window
SELECT id, rank() OVER (ORDER BY name COLLATE "und-x-icu", id) FROM people WHERE age = 55 AND dept = 'eng';

-- name: coll_icu_min_pinned
SELECT min(note COLLATE "und-x-icu"), max(note COLLATE "und-x-icu") FROM visits WHERE person_id = 42;

-- name: coll_icu_min_visits
SELECT min(note COLLATE "und-x-icu"), max(note COLLATE "und-x-icu") FROM visits WHERE note <> '' AND note NOT LIKE ' %';

-- name: coll_c_vs_default
SELECT min(name COLLATE "C"), max(name COLLATE "C") FROM people;

-- ===== Special characters through the combine step (quotes, backslashes, braces, commas, 'NULL', whitespace) =====

-- name: special_names_rows_ordered
-- ordered
SELECT id, name FROM people WHERE name ~ '["\\{},\t\n]' OR name LIKE 'NULL%' OR name LIKE ' %' ORDER BY id LIMIT 40;

-- name: special_names_distinct
SELECT DISTINCT name FROM people WHERE name ~ '["\\{},]' OR name LIKE 'NULL%' OR name LIKE ' %' OR name ~ '[\t\n]';

-- name: special_names_count_distinct
SELECT count(DISTINCT name), count(DISTINCT note) FROM people, visits WHERE people.id = 42 AND visits.person_id = 42;

-- name: special_names_group
SELECT name, count(*) FROM people WHERE name IN ('NULL', 'null', '', ' spaced ', '{brace}', 'comma, here', '"Quoted"', 'back\slash') GROUP BY name;

-- name: special_names_group_all
-- ordered
SELECT name, count(*) FROM people GROUP BY name ORDER BY name NULLS FIRST LIMIT 30;

-- name: special_names_min_max
SELECT min(name), max(name) FROM people WHERE name LIKE '%"%' OR name LIKE '%{%' OR name LIKE '%,%';

-- name: special_notes_distinct
SELECT DISTINCT note FROM visits;

-- name: special_notes_string_agg
SELECT string_agg(DISTINCT note, '|' ORDER BY note) FROM visits;

-- name: special_notes_group_arrays
SELECT note, array_agg(DISTINCT person_id ORDER BY person_id) FILTER (WHERE person_id < 60) FROM visits GROUP BY note;

-- name: special_names_window
SELECT name, row_number() OVER (ORDER BY id) FROM people WHERE name LIKE '%\\%' OR name LIKE '%"%';

-- name: special_names_text_array_agg
SELECT dept, array_agg(name ORDER BY id) FILTER (WHERE id < 400) FROM people GROUP BY dept;

-- ===== Key pins that are not what they seem (column aliases, text forms of the key, repeated execution) =====

-- name: alias_columns_key_shadow
SELECT count(*) FROM people p(a, b, c, d, id) WHERE id = 30;

-- name: alias_columns_key_shadow_rows
SELECT a, id FROM people p(a, b, c, d, id) WHERE id = 31 AND c = 'eng';

-- name: alias_columns_swap_key
SELECT count(*), min(visit_person) FROM visits v(visit_person, person_id) WHERE person_id = 42;

-- name: alias_columns_key_renamed
SELECT pid, name FROM people p(pid) WHERE pid = 42;

-- name: alias_columns_join_renamed
SELECT p.pid, v.visit_id FROM people p(pid) JOIN visits v ON v.person_id = p.pid WHERE p.pid = 43;

-- name: point_text_literal_spaces
SELECT * FROM people WHERE id = ' 42 ';

-- name: point_text_literal_plus
SELECT * FROM people WHERE id = '+43';

-- name: point_text_literal_leading_zero
SELECT * FROM people WHERE id = '044';

-- name: point_param_string_spaces
-- args: ' 45'
SELECT id, name FROM people WHERE id = $1;

-- name: point_param_string_negative
-- args: '-200'
SELECT id, name FROM people WHERE id = $1;

-- name: point_min_int8
SELECT count(*) FROM people WHERE id = -9223372036854775808;

-- name: point_max_int8
SELECT count(*) FROM people WHERE id = 9223372036854775807;

-- name: point_unary_plus
SELECT * FROM people WHERE id = +46;

-- name: point_is_not_distinct
SELECT * FROM people WHERE id IS NOT DISTINCT FROM 47;

-- name: point_having_pin
SELECT id, count(*) FROM people GROUP BY id HAVING id = 48;

-- name: point_only
SELECT * FROM ONLY people WHERE id = 49;

-- name: point_schema_qualified_column
SELECT public.people.name FROM public.people WHERE id = 50;

-- name: scan_schema_qualified_column
SELECT public.people.name FROM public.people WHERE age = 77;

-- name: point_param_repeat_1
-- args: 1000
SELECT * FROM people WHERE id = $1;

-- name: point_param_repeat_2
-- args: -1000
SELECT * FROM people WHERE id = $1;

-- name: point_param_repeat_3
-- args: 1000000000679
SELECT * FROM people WHERE id = $1;

-- name: visits_param_repeat_1
-- args: 1001
SELECT visit_id, amount FROM visits WHERE person_id = $1;

-- name: visits_param_repeat_2
-- args: 1002
SELECT visit_id, amount FROM visits WHERE person_id = $1;

-- name: depts_exists_pinned
SELECT count(*) FROM depts d WHERE EXISTS (SELECT 1 FROM people WHERE id = 42 AND people.dept = d.dept);

-- name: key_expression_column_side
SELECT id FROM people WHERE id + 0 = 51;

-- name: key_in_subquery_pinned_other_table
SELECT id FROM people WHERE id = 52 AND id IN (SELECT person_id FROM visits WHERE person_id = 52);

-- ===== Multi-shard answers built from shipped rows (qualified names, whole rows, JSON) =====

-- name: raw_schema_qualified_distinct
SELECT DISTINCT public.people.dept FROM public.people;

-- name: raw_qualified_order_limit
-- ordered
SELECT people.dept, people.id FROM people ORDER BY people.dept NULLS FIRST, people.id LIMIT 5;

-- name: raw_alias_grouped_order
-- ordered
SELECT p.dept, count(*) FROM people p GROUP BY p.dept ORDER BY p.dept NULLS LAST;

-- name: raw_whole_row_distinct
SELECT DISTINCT p FROM people p WHERE id BETWEEN 1 AND 20;

-- name: raw_whole_row_json_order
-- ordered
SELECT row_to_json(p) FROM people p ORDER BY id LIMIT 3;

-- name: raw_whole_row_json_grouped
SELECT dept, json_agg(p ORDER BY id) FILTER (WHERE id < 40) FROM people p GROUP BY dept;

-- name: raw_count_filter_collate
SELECT count(*) FILTER (WHERE name COLLATE "und-x-icu" < 'b'), max(name) FILTER (WHERE age = 30) FROM people;

-- name: raw_percentile_float
SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY score), percentile_disc(0.5) WITHIN GROUP (ORDER BY joined) FROM people;

-- name: raw_distinct_on_grouped
SELECT DISTINCT ON (dept) dept, active, count(*) FROM people GROUP BY dept, active ORDER BY dept, count(*) DESC, active;

-- name: raw_timezone_sensitive_group
SELECT date_trunc('day', joined)::date AS d, count(*) FROM people WHERE joined < '2015-02-01' GROUP BY 1;

-- name: raw_timezone_sensitive_extract
SELECT extract(hour FROM joined) AS h, count(*) FROM people GROUP BY 1;

-- name: raw_timezone_sensitive_text
SELECT joined::text FROM people WHERE id BETWEEN 60 AND 70;

-- name: raw_timezone_sensitive_pinned
SELECT joined::date, to_char(joined, 'YYYY-MM-DD HH24:MI TZH:TZM') FROM people WHERE id = 71;

-- name: raw_timezone_sensitive_min
SELECT min(joined::date), max(to_char(joined, 'HH24:MI')) FROM people;

-- name: alias_columns_swap_key_in
SELECT count(*), sum(visit_person) FROM visits v(visit_person, person_id) WHERE person_id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20);

-- ===== Co-located joins and subqueries across shards: linked by the key (answerable shard by shard) or not (must be refused) =====

-- name: xjoin_distinct
SELECT DISTINCT p.dept FROM people p JOIN visits v ON v.person_id = p.id WHERE v.amount > 990;

-- name: xjoin_count_distinct
SELECT count(DISTINCT v.note), count(DISTINCT p.dept) FROM people p JOIN visits v ON v.person_id = p.id;

-- name: xjoin_window
SELECT p.id, v.visit_id, row_number() OVER (PARTITION BY p.dept ORDER BY v.visit_id) FROM people p JOIN visits v ON v.person_id = p.id WHERE p.age = 33;

-- name: xjoin_avg_float
SELECT p.dept, avg(p.score), sum(v.amount), max(v.at) FROM people p JOIN visits v ON v.person_id = p.id GROUP BY p.dept;

-- name: xjoin_having
SELECT p.id, count(*) FROM people p JOIN visits v ON v.person_id = p.id GROUP BY p.id HAVING count(*) >= 6;

-- name: xjoin_order_limit_offset
-- ordered
SELECT p.name, v.amount FROM people p JOIN visits v ON v.person_id = p.id ORDER BY v.amount DESC NULLS LAST, v.visit_id LIMIT 5 OFFSET 5;

-- name: xjoin_right
SELECT count(*), count(p.id), count(v.visit_id) FROM people p RIGHT JOIN visits v ON v.person_id = p.id;

-- name: xjoin_full
SELECT count(*), count(p.id), count(v.visit_id) FROM people p FULL JOIN visits v ON v.person_id = p.id;

-- name: xjoin_full_rows_orphans
SELECT v.person_id, v.visit_id FROM people p FULL JOIN visits v ON v.person_id = p.id WHERE p.id IS NULL AND v.visit_id < 3000;

-- name: xjoin_left_extra_condition
SELECT count(*), count(v.visit_id) FROM people p LEFT JOIN visits v ON v.person_id = p.id AND v.amount > 500;

-- name: xjoin_transitive
SELECT count(*) FROM people a JOIN visits v ON v.person_id = a.id JOIN people b ON b.id = v.person_id;

-- name: xjoin_key_plus_inequality
SELECT count(*) FROM people p JOIN visits v ON v.person_id = p.id AND v.visit_id > p.age * 100;

-- name: xjoin_semi_in
SELECT count(*) FROM people p WHERE p.id IN (SELECT v.person_id FROM visits v WHERE v.amount > 900);

-- name: xjoin_anti_not_in
SELECT count(*) FROM people p WHERE p.id NOT IN (SELECT v.person_id FROM visits v);

-- name: xjoin_correlated_count
SELECT count(*) FROM people p WHERE (SELECT count(*) FROM visits v WHERE v.person_id = p.id) > 2;

-- name: xjoin_correlated_all
SELECT count(*) FROM people p WHERE p.salary > ALL (SELECT v.amount * 100 FROM visits v WHERE v.person_id = p.id);

-- name: xjoin_not_in_null_on_some_shards
SELECT count(*) FROM people p WHERE p.id NOT IN (SELECT v.person_id FROM people q LEFT JOIN visits v ON v.person_id = q.id AND v.amount > 999 WHERE q.id IN (1, 2));

-- name: xjoin_using_renamed
SELECT count(*) FROM (SELECT id AS person_id, dept FROM people) p JOIN visits v USING (person_id);

-- name: xunlinked_exists
SELECT count(*) FROM people WHERE EXISTS (SELECT 1 FROM visits WHERE amount > 999.5);

-- name: xunlinked_not_exists_one_visit
SELECT count(*) FROM people WHERE NOT EXISTS (SELECT 1 FROM visits WHERE visit_id = 12345);

-- name: xunlinked_in_nonkey
SELECT count(*) FROM people WHERE age IN (SELECT visit_id FROM visits);

-- name: xunlinked_key_plus_zero
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.person_id = p.id + 0);

-- name: xunlinked_or_link
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.person_id = p.id OR v.visit_id = p.id);

-- name: xunlinked_inequality
SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.person_id > p.id AND v.visit_id = 1);

-- name: xunlinked_chain_nonkey
SELECT count(*) FROM people p LEFT JOIN visits v ON v.person_id = p.id LEFT JOIN visits w ON w.visit_id = v.visit_id + 1;

-- name: xunlinked_where_or
SELECT count(*) FROM people p, visits v WHERE v.person_id = p.id OR (p.id = 1 AND v.visit_id = 1);

-- name: xunlinked_cross_join
SELECT count(*) FROM people p CROSS JOIN visits v WHERE p.age = 18 AND v.visit_id < 5;

-- name: xunlinked_scalar_count
SELECT count(*) FROM people WHERE age < (SELECT count(*) FROM visits WHERE visit_id < 50);

-- name: xunlinked_lateral_limit
SELECT count(*) FROM people p, LATERAL (SELECT v.amount FROM visits v WHERE v.person_id = p.id ORDER BY v.amount DESC NULLS LAST LIMIT 1) l WHERE p.age = 20;

-- name: xunlinked_pinned_with_exists
SELECT id FROM people WHERE id = 42 AND EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = 7);

-- name: xunlinked_pinned_with_not_exists
SELECT id FROM people WHERE id = 42 AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = 8);

-- name: xunlinked_pinned_scalar_count
SELECT id, (SELECT count(*) FROM visits WHERE amount > 999) FROM people WHERE id = 43;

-- name: xunlinked_pinned_in_nonkey
SELECT id FROM people WHERE id = 44 AND age IN (SELECT visit_id FROM visits);

-- name: xunlinked_pinned_join_other_key
SELECT p.id, v.visit_id FROM people p JOIN visits v ON v.person_id = 45 WHERE p.id = 46;

-- name: xunlinked_people_twice_nonkey
SELECT count(*) FROM people a JOIN people b ON a.dept = b.dept WHERE a.id = 47;

-- name: xunlinked_semi_on_nonkey_in_pinned
SELECT id FROM people p WHERE p.id = 48 AND p.age IN (SELECT v.visit_id % 100 FROM visits v WHERE v.person_id = p.id);

-- name: visits_null_visit_ids
SELECT count(*), count(visit_id), min(person_id) FROM visits WHERE visit_id IS NULL;

-- name: visits_null_visit_id_order
-- ordered
SELECT person_id, visit_id FROM visits ORDER BY visit_id NULLS FIRST, person_id LIMIT 12;

-- name: noncoloc_null_visit_ids_left
SELECT count(*) FROM visits v LEFT JOIN people p ON p.id = v.visit_id WHERE v.visit_id IS NULL;

-- ===== Streaming sort merge: ordinals past a *, every key type, fallbacks, bounds =====

-- name: merge_star_ordinals
-- ordered
SELECT * FROM people ORDER BY 4 DESC NULLS LAST, 1 LIMIT 25 OFFSET 3;

-- name: merge_star_ordinal_first
-- ordered
SELECT * FROM people WHERE age > 60 ORDER BY 1 DESC;

-- name: merge_star_then_expression
-- ordered
SELECT *, salary * 2 AS s2 FROM people ORDER BY 9, id LIMIT 20;

-- name: merge_no_limit_all_rows
-- ordered
SELECT id, name, joined FROM people ORDER BY joined DESC NULLS FIRST, id;

-- name: merge_float_nan_and_nulls
-- ordered
SELECT id, score FROM people ORDER BY score NULLS FIRST, id DESC LIMIT 40;

-- name: merge_numeric_expression_key
-- ordered
SELECT id FROM people ORDER BY salary / 7 DESC, id LIMIT 30 OFFSET 100;

-- name: merge_bool_and_text
-- ordered
SELECT id, active, name FROM people ORDER BY active NULLS FIRST, name DESC, id LIMIT 50;

-- name: merge_text_c_collation
-- ordered
SELECT id, name FROM people ORDER BY name COLLATE "C", id LIMIT 60;

-- name: merge_text_icu_collation_fallback
-- ordered
SELECT id, name FROM people ORDER BY lower(name) COLLATE "und-x-icu" DESC, id LIMIT 60;

-- name: merge_params
-- ordered
-- args: 15, 40
SELECT id, age FROM people ORDER BY age, id LIMIT $1 OFFSET $2;

-- name: merge_null_limit_param
-- ordered
-- args: NULL
SELECT id FROM people WHERE age < 25 ORDER BY id LIMIT $1;

-- name: merge_output_alias
-- ordered
SELECT id, dept AS d FROM people ORDER BY d NULLS FIRST, id LIMIT 70;

-- name: merge_colocated_join
-- ordered
SELECT p.id, v.visit_id, v.amount FROM people p JOIN visits v ON v.person_id = p.id ORDER BY v.amount DESC NULLS LAST, p.id, v.visit_id LIMIT 45;

-- name: merge_limit_without_order_count
SELECT count(*) FROM (SELECT id FROM people LIMIT 17) s;

-- name: merge_pruned_in_list
-- ordered
SELECT id, name FROM people WHERE id IN (5, 17, 99, 1234, 4000, 77777) ORDER BY name, id;

-- name: sum_float4_cast
SELECT sum(score::real) IS NOT NULL, count(*) FROM people;

-- name: sum_interval_and_count
SELECT sum(at - '2020-01-01 00:00:00+00'), count(*), sum(visit_id) FROM visits WHERE visit_id IS NOT NULL;

-- ===== Subqueries and CTEs run first through pgshard (materialized), then the rest over their rows =====

-- name: mat_count_of_limited
SELECT count(*), sum(id) FROM (SELECT id FROM people ORDER BY id LIMIT 17) s;

-- name: mat_cte_group_then_filter
-- ordered
WITH d AS (SELECT dept, count(*) AS n, avg(salary) AS a FROM people GROUP BY dept)
SELECT dept, n, round(a, 2) FROM d WHERE n > 10 ORDER BY dept NULLS FIRST;

-- name: mat_cte_used_twice
WITH d AS (SELECT dept, max(age) AS m FROM people GROUP BY dept)
SELECT count(*) FROM d d1 JOIN d d2 ON d1.m = d2.m;

-- name: mat_cte_column_aliases
-- ordered
WITH d(dept_name, people_count) AS (SELECT dept, count(*) FROM people GROUP BY 1)
SELECT * FROM d ORDER BY people_count DESC, dept_name NULLS FIRST LIMIT 5;

-- name: mat_derived_joined_to_distributed
-- ordered
SELECT p.id, p.name, t.m FROM people p JOIN (SELECT dept, max(salary) AS m FROM people GROUP BY dept) t ON p.dept = t.dept AND p.salary = t.m ORDER BY p.id;

-- name: mat_params_inside_and_outside
-- ordered
-- args: 30, 5
SELECT s.age, s.n FROM (SELECT age, count(*) AS n FROM people WHERE age > $1 GROUP BY age) s WHERE s.n > $2 ORDER BY s.age;

-- name: mat_distinct_in_from
SELECT count(*) FROM (SELECT DISTINCT dept, active FROM people) s;

-- name: mat_distinct_numeric_scales
SELECT count(*) FROM (SELECT DISTINCT salary / 100 FROM people) s;

-- name: mat_window_in_from
-- ordered
SELECT id, r FROM (SELECT id, rank() OVER (ORDER BY salary DESC NULLS LAST, id) AS r FROM people) s WHERE r <= 10 ORDER BY r;

-- name: mat_star_limited
-- ordered
SELECT * FROM (SELECT * FROM people ORDER BY joined DESC NULLS LAST, id LIMIT 8) s ORDER BY id;

-- name: mat_types_roundtrip
-- ordered
SELECT * FROM (SELECT id, score, joined, salary, active, name FROM people WHERE id % 97 = 0 ORDER BY id LIMIT 30) s ORDER BY score NULLS FIRST, id;

-- name: mat_nested
SELECT max(n) FROM (SELECT dept, count(*) AS n FROM (SELECT dept FROM people ORDER BY id LIMIT 500) a GROUP BY dept) b;

-- name: mat_cte_and_visits
-- ordered
WITH big AS (SELECT person_id, sum(amount) AS total FROM visits GROUP BY person_id ORDER BY 2 DESC NULLS LAST, 1 LIMIT 10)
SELECT b.person_id, b.total, p.name FROM big b JOIN people p ON p.id = b.person_id ORDER BY b.total DESC NULLS LAST, b.person_id;

-- name: mat_sublink_scalar_in_where
SELECT count(*) FROM people WHERE salary > (SELECT avg(salary) FROM people WHERE dept = 'eng');

-- name: mat_sublink_in_limited
-- ordered
SELECT id, age FROM people WHERE id IN (SELECT person_id FROM visits ORDER BY amount DESC NULLS LAST, person_id, visit_id LIMIT 20) ORDER BY id;

-- name: mat_sublink_not_in_with_nulls
SELECT count(*) FROM people WHERE age NOT IN (SELECT visit_id FROM visits WHERE person_id < 50);

-- name: mat_sublink_exists_and_array
SELECT EXISTS (SELECT 1 FROM visits WHERE amount > 900), ARRAY(SELECT id FROM people WHERE age = 33 ORDER BY id LIMIT 5);

-- name: mat_sublink_in_select_list
-- ordered
SELECT id, (SELECT max(age) FROM people) - age AS younger_by FROM people WHERE id % 500 = 0 ORDER BY id;

-- name: mat_sublink_correlated_stays
SELECT count(*) FROM people p WHERE p.age > (SELECT avg(q.age) FROM people q WHERE q.dept = p.dept);

-- ===== Row constructors and ORs of conjunctions holding the key (pruned like key IN) =====

-- name: rowin_literal_pairs
SELECT * FROM visits WHERE (person_id, visit_id) IN ((1, 1), (2, 1), (42, 3), (7, 2));

-- name: rowin_params_key_second
-- args: 1, 1, 7, 2
SELECT person_id, visit_id, amount FROM visits WHERE (visit_id, person_id) IN (($2, $1), ($4, $3));

-- name: rowin_null_key
SELECT * FROM people WHERE (id, age) IN ((NULL, 30), (7, age));

-- name: rowin_for_update_count
SELECT count(*) FROM (SELECT * FROM visits WHERE (person_id, visit_id) IN ((3, 1), (4, 1)) FOR UPDATE) s;

-- name: row_equality_pinned
SELECT * FROM people WHERE (id, active) = (42, active);

-- name: row_equality_or
SELECT count(*), sum(amount) FROM visits WHERE (person_id, visit_id) = (1, 1) OR (person_id, visit_id) = (2, 2);

-- name: or_of_conjunctions
SELECT id, name FROM people WHERE (id = 3 AND age > 20) OR (dept = 'eng' AND id = 5) OR id = 9;

-- name: or_of_conjunctions_unpruned
SELECT count(*) FROM people WHERE (id = 3 AND age > 20) OR age < 25;

-- ===== Session and server settings: keys and values read under the session's TimeZone and DateStyle, text order under the database's collation =====
-- events (key at timestamptz), days (key day date) and stamps (key stamp
-- timestamp) hold typed rows (ids up to 600) and literal rows (ids above
-- 100000) that Run inserts in the session's settings: zone-less timestamptz
-- keys, and non-key dates such as '03/04/2024' (4 March under DateStyle MDY,
-- 3 April under DMY). TestDifferentialMatrix runs these under several
-- collations, time zones, DateStyles and search_paths; literals here must be
-- valid under both MDY and DMY (day and month both at most 12).

-- name: tz_key_zoneless_literal
SELECT id, label FROM events WHERE at = '2024-01-01 00:00';

-- name: tz_key_zoneless_literal_t
SELECT id, label FROM events WHERE at = '2024-01-01T00:00';

-- name: tz_key_zoneless_param
-- args: '2024-01-01 00:00'
SELECT id FROM events WHERE at = $1;

-- name: tz_key_zoneless_param_cast
-- args: '2024-01-01 00:00'
SELECT id FROM events WHERE at = $1::timestamptz;

-- name: tz_key_zoneless_param_fraction
-- args: '2024-06-15 12:00:00.123456'
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_time_param_utc_midnight
-- args: ts:2024-01-01T00:00:00Z
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_time_param_new_york_midnight
-- args: ts:2024-01-01T05:00:00Z
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_time_param_kolkata_midnight
-- args: ts:2023-12-31T18:30:00Z
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_time_param_kolkata_evening
-- args: ts:2025-02-28T12:45:00Z
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_explicit_utc
SELECT id, label FROM events WHERE at = '2024-01-01 00:00+00';

-- name: tz_key_explicit_offset
SELECT id, label FROM events WHERE at = '2024-07-04 13:00+00';

-- name: tz_key_dst_gap
SELECT id, label FROM events WHERE at = '2024-03-10 02:30';

-- name: tz_key_dst_twice
SELECT id, label FROM events WHERE at = '2024-11-03 01:30';

-- name: tz_key_leap_night
SELECT id, label FROM events WHERE at = '2024-02-29 23:30';

-- name: tz_key_last_microsecond
SELECT id, label FROM events WHERE at = '2023-12-31 23:59:59.999999';

-- name: tz_key_kolkata_evening
SELECT id, label FROM events WHERE at = '2025-02-28 18:15';

-- name: tz_key_in_list
SELECT id FROM events WHERE at IN ('2024-01-01 00:00', '2024-06-15 12:00:00.123456', '2025-02-28 18:15');

-- name: tz_key_or
SELECT id FROM events WHERE at = '2024-03-10 02:30' OR at = '2024-11-03 01:30';

-- name: tz_key_any_text_array
-- args: ['2024-01-01 00:00', '2024-11-03 01:30']
SELECT id FROM events WHERE at = ANY($1::text[]::timestamptz[]);

-- name: tz_key_count_pinned
SELECT count(*), min(id), max(id) FROM events WHERE at = '2024-01-01 00:00' AND id > 0;

-- name: tz_literal_rows
-- ordered
SELECT id, at, local, day, label FROM events WHERE id > 100000 ORDER BY id;

-- name: tz_range_zoneless_month
SELECT count(*) FROM events WHERE at >= '2024-01-01' AND at < '2024-02-01';

-- name: tz_range_zoneless_day
SELECT id FROM events WHERE at >= '2024-01-01 00:00' AND at < '2024-01-02 00:00';

-- name: tz_group_day
SELECT date_trunc('day', at) AS d, count(*) FROM events WHERE at < '2023-04-01' GROUP BY d;

-- name: tz_group_date_cast
SELECT at::date AS d, count(*) FROM events GROUP BY 1;

-- name: tz_group_hour
SELECT extract(hour FROM at) AS h, count(*) FROM events GROUP BY 1;

-- name: tz_text_output
-- ordered
SELECT id, at::text FROM events WHERE id % 40 = 0 OR id > 100000 ORDER BY id;

-- name: tz_to_char
SELECT id, to_char(at, 'YYYY-MM-DD HH24:MI:SS TZ OF') FROM events WHERE id % 60 = 0;

-- name: tz_order_by_at
-- ordered
SELECT id, at FROM events ORDER BY at, id LIMIT 30;

-- name: tz_order_by_at_text
-- ordered
SELECT id, at::text AS t FROM events ORDER BY t, id LIMIT 30;

-- name: tz_min_max_text
SELECT min(at::text), max(at::text) FROM events;

-- name: tz_local_as_timestamptz
SELECT count(*) FROM events WHERE local::timestamptz < at;

-- name: tz_conversions_pinned
SELECT id, local::timestamptz, at::timestamp, day::timestamptz FROM events WHERE at = '2024-01-01 00:00+00';

-- name: tz_people_joined_day
-- ordered
SELECT joined::date AS d, count(*) FROM people GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT 30;

-- name: tz_people_joined_zoneless_range
SELECT count(*) FROM people WHERE joined >= '2020-03-01' AND joined < '2020-03-02 12:00';

-- name: tz_visits_at_hour
SELECT extract(hour FROM at) AS h, count(*) FROM visits GROUP BY 1;

-- name: tz_typed_literal_bound
SELECT count(*) FROM events WHERE at < timestamptz '2024-06-01';

-- name: ds_stamp_key_iso
SELECT id, label FROM stamps WHERE stamp = '2024-03-10 02:30';

-- name: ds_stamp_key_zone_ignored
SELECT id, label FROM stamps WHERE stamp = '2024-01-01 00:00+05:30';

-- name: ds_stamp_key_ambiguous
SELECT id, label FROM stamps WHERE stamp = '04/03/2024 10:00';

-- name: ds_stamp_key_param_text
-- args: '2024-11-03 01:30'
SELECT id, label FROM stamps WHERE stamp = $1;

-- name: ds_stamp_key_time_param
-- args: ts:2024-11-03T01:30:00Z
SELECT id, label FROM stamps WHERE stamp = $1;

-- name: ds_stamp_literal_rows
-- ordered
SELECT id, stamp, at, label FROM stamps WHERE id > 100000 ORDER BY id;

-- name: ds_stamps_text
-- ordered
SELECT id, stamp::text, at::text FROM stamps WHERE id % 30 = 0 OR id > 100000 ORDER BY id;

-- name: ds_day_key_iso
SELECT id, label FROM days WHERE day = '2024-04-03';

-- name: ds_day_key_ambiguous
SELECT id, label FROM days WHERE day = '03/04/2024';

-- name: ds_day_key_ambiguous_param
-- args: '03/04/2024'
SELECT id, label FROM days WHERE day = $1;

-- name: ds_day_key_date_param
-- args: date:2024-04-03
SELECT id, label FROM days WHERE day = $1;

-- name: ds_day_key_in_ambiguous
SELECT id, day FROM days WHERE day IN ('03/04/2024', '05/01/2024');

-- name: ds_day_range_ambiguous
SELECT count(*) FROM days WHERE day < '03/04/2024';

-- name: ds_day_text
-- ordered
SELECT id, day::text, stamp::text FROM days WHERE id % 20 = 0 OR id > 100000 ORDER BY id;

-- name: ds_day_to_char
SELECT id, to_char(day, 'DD Mon YYYY'), to_char(stamp, 'DD/MM/YYYY HH24:MI') FROM days WHERE id % 25 = 0;

-- name: ds_day_distinct_text_order
-- ordered
SELECT DISTINCT day::text AS d FROM days WHERE day < '2023-03-01' ORDER BY d;

-- name: ds_day_group_month_text
SELECT date_trunc('month', day)::date::text AS m, count(*) FROM days GROUP BY 1;

-- name: ds_day_min_max_text
SELECT min(day)::text, max(stamp)::text FROM days;

-- name: ds_day_literal_rows
-- ordered
SELECT id, day, stamp, label FROM days WHERE id > 100000 ORDER BY id;

-- name: ds_events_day_ambiguous_filter
SELECT count(*) FROM events WHERE day = '03/04/2024';

-- name: ds_string_agg_dates
SELECT string_agg(day::text, ',' ORDER BY day, id) FROM days WHERE id <= 30;

-- name: coll_db_order_labels
-- ordered
SELECT id, label FROM events ORDER BY label NULLS FIRST, id LIMIT 60;

-- name: coll_db_order_labels_desc
-- ordered
SELECT id, label FROM events ORDER BY label DESC NULLS LAST, id DESC LIMIT 60;

-- name: coll_db_distinct_labels
-- ordered
SELECT DISTINCT label FROM events ORDER BY label NULLS FIRST;

-- name: coll_db_min_max_label
SELECT min(label), max(label) FROM events;

-- name: coll_db_order_names_page
-- ordered
SELECT id, name FROM people WHERE id BETWEEN 1 AND 2000 ORDER BY name NULLS FIRST, id;

-- name: coll_db_order_names_offset
-- ordered
SELECT id, name FROM people ORDER BY name, id LIMIT 20 OFFSET 100;

-- name: coll_db_order_dept_name
-- ordered
SELECT dept, name, id FROM people ORDER BY dept NULLS FIRST, name NULLS FIRST, id LIMIT 80;

-- name: coll_db_order_notes
-- ordered
SELECT person_id, visit_id, note FROM visits ORDER BY note NULLS FIRST, person_id, visit_id LIMIT 100;

-- name: coll_db_order_lower
-- ordered
SELECT id, lower(label) AS l FROM days ORDER BY l NULLS FIRST, id LIMIT 50;

-- name: coll_db_group_order
-- ordered
SELECT label, count(*) FROM stamps GROUP BY label ORDER BY label NULLS FIRST;

-- name: coll_db_string_agg
SELECT string_agg(DISTINCT label, '|' ORDER BY label) FROM events;

-- name: coll_db_window
SELECT id, row_number() OVER (ORDER BY label, id) FROM days WHERE id <= 60;

-- name: coll_db_compare_filter
SELECT count(*) FROM events WHERE label < 'b';

-- name: coll_db_order_label_pinned
-- ordered
SELECT id, label FROM events WHERE at = '2024-01-01 00:00+00' ORDER BY label NULLS FIRST, id;

-- name: coll_db_order_text_param
-- ordered
-- args: 'apple'
SELECT id, label FROM events WHERE label >= $1 ORDER BY label, id LIMIT 40;

-- name: coll_db_max_name_dept
SELECT dept, max(name), min(name) FROM people GROUP BY dept;

-- name: coll_db_union_order
-- ordered
SELECT label FROM days UNION SELECT label FROM stamps ORDER BY 1 NULLS FIRST;

-- name: sp_current_schema
SELECT current_schema();

-- name: sp_public_events
SELECT count(*) FROM public.events;

-- name: tz_key_time_param_kathmandu_midnight
-- args: ts:2023-12-31T18:15:00Z
SELECT id, label FROM events WHERE at = $1;

-- name: tz_key_time_param_leap_night_new_york
-- args: ts:2024-03-01T04:30:00Z
SELECT id, label FROM events WHERE at = $1;
