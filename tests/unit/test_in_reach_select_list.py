"""``public.in_reach`` splits a select list and wraps each column in ``CASE``: a comma in a
string literal or a quoted name is not a column's end, ``as`` is read in any case, and a
column it cannot name is refused at import, never turned into a statement PostgreSQL
refuses at the first read (or a column answered under another name, unguarded)."""

from __future__ import annotations

import pytest

from shared.readmodels.public import columns_of, in_reach


def test_a_comma_in_a_literal_a_quoted_name_or_brackets_does_not_end_a_column() -> None:
    select = ("a, coalesce(b, 'x, y') AS b, data->>'k,l' AS k, tags::text[] AS tags,"
              ' c AS "quoted, name", (SELECT max(z) FROM t WHERE t.q IN (1, 2)) AS m,'
              " 'it''s, (' AS s, arr[1:2] AS sl")
    assert columns_of(select) == [
        "a", "coalesce(b, 'x, y') AS b", "data->>'k,l' AS k", "tags::text[] AS tags",
        'c AS "quoted, name"', "(SELECT max(z) FROM t WHERE t.q IN (1, 2)) AS m",
        "'it''s, (' AS s", "arr[1:2] AS sl"]


def test_each_column_is_guarded_under_its_own_name() -> None:
    sql = in_reach("t.a, coalesce(b, 'x, y') as b, c AS \"quoted, name\","
                   " (SELECT v.level AS l FROM v) AS lvl", "$2")
    when = "$2::text IS NULL OR center_id = $2"
    assert sql == ("center_id,"
                   f" CASE WHEN {when} THEN t.a END AS a,"
                   f" CASE WHEN {when} THEN coalesce(b, 'x, y') END AS b,"
                   f' CASE WHEN {when} THEN c END AS "quoted, name",'
                   f" CASE WHEN {when} THEN (SELECT v.level AS l FROM v) END AS lvl")


@pytest.mark.parametrize("column", [
    "coalesce((SELECT v.level AS l FROM v), 0)",  # an inner AS is not the column's name
    "lower(t.name)", "aspects::text", "data->>'k'", "CAST(x AS text)"])
def test_a_column_with_no_name_is_refused_at_import(column: str) -> None:
    with pytest.raises(ValueError, match="needs a name"):
        in_reach(["a", column], "$2")


def test_an_expression_named_center_id_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="center column"):
        in_reach("a, coalesce(r.center_id, c.center_id) AS center_id", "$2")
    assert in_reach("r.center_id, a", "$2", center="r.center_id").startswith(
        "r.center_id AS center_id, CASE")
