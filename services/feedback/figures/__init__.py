"""The center's figures: the read model (``projection``: fact rows built from the whole log) and
the figures counted over it (``queries``: one definition each, and ``compute``)."""

from services.feedback.figures.projection import (
    CONSUMER,
    DDL,
    FEEDBACK_TYPES,
    FOLLOWUP_TYPES,
    INTAKE_TYPES,
    READ_MODEL,
    TABLES,
    FiguresProjection,
    subjects,
)
from services.feedback.figures.queries import (
    BAD,
    DIMENSIONS,
    FIGURE_NAMES,
    FIGURES,
    SATISFIED,
    Dimension,
    Figure,
    FigureQuery,
    Period,
    compute,
)

__all__ = [
    "BAD", "CONSUMER", "DDL", "DIMENSIONS", "FEEDBACK_TYPES", "FIGURES", "FIGURE_NAMES",
    "FOLLOWUP_TYPES", "INTAKE_TYPES", "READ_MODEL", "SATISFIED", "TABLES", "Dimension", "Figure",
    "FigureQuery", "FiguresProjection", "Period", "compute", "subjects",
]
