"""A rectification is read two ways: the board's list joins ``surveys v`` for the revisit's
status; one rectification by id reads ``rectifications r`` alone, the revisit by the survey's
key and only in reach. Both select lists are built from the same parts, so a column added or
reworded in one is in the other, and the read by id never names the join's ``v``."""

from __future__ import annotations

import re

from services.feedback import queries
from shared.readmodels.public import _named, columns_of


def _names(select_list: str) -> list[str]:
    return [_named(column)[1] for column in columns_of(select_list)]


def test_the_read_by_id_answers_every_column_of_the_board_in_its_order() -> None:
    board = _names(queries.RECTIFICATION_COLUMNS)
    board.remove("center_id")  # in_reach answers it first, always
    assert _names(queries.RECTIFICATION_IN_REACH) == ["center_id", *board]


def test_the_read_by_id_names_the_revisit_survey_only_inside_its_own_subquery() -> None:
    for column in columns_of(queries.RECTIFICATION_IN_REACH):
        outside = re.sub(r"\(SELECT v\.\w+ FROM surveys v WHERE [^)]*\)", "", column)
        assert not re.search(r"\bv\.", outside), column


def test_the_board_and_the_read_by_id_share_their_own_columns_word_for_word() -> None:
    board, by_id = (dict(_named(c)[::-1] for c in columns_of(s)) for s in
                    (queries.RECTIFICATION_COLUMNS, queries.RECTIFICATION_IN_REACH))
    for name, expression in board.items():
        if name in ("center_id", "revisit_status", "revisit_level"):
            continue
        assert f"THEN {expression} END" in by_id[name], name
