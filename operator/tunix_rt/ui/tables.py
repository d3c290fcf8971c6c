"""The pages' tables sorted and filtered on the server, from the query string
(``?sort=score&order=desc``, ``?namespace=team-a&phase=Running&q=lr``): every header is a
plain link and the filter a GET form, so both work without JavaScript and by keyboard,
and a sorted view is a URL to share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.ui.models import RunRow, TrialRow

R = TypeVar("R")
Order = Literal["asc", "desc"]
PARAM = "param."
"""Column key prefix of a searched parameter (``param.learningRate``)."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False
    first: Order = "asc"
    """The order a first click asks for (scores: best first)."""


@dataclass(frozen=True)
class Sort:
    key: str
    order: Order

    @classmethod
    def parse(cls, query: Mapping[str, str], columns: Sequence[Column], default: Sort) -> Sort:
        """The query's sort, or ``default`` when it names no column of this table."""
        key = query.get("sort", "")
        if key not in {c.key for c in columns}:
            return default
        column = next(c for c in columns if c.key == key)
        order: Order = column.first
        if query.get("order") == "asc":
            order = "asc"
        elif query.get("order") == "desc":
            order = "desc"
        return cls(key, order)


@dataclass(frozen=True)
class Header:
    """A header cell: its label, the link that sorts by it, and its ``aria-sort``."""

    column: Column
    href: str
    aria_sort: str
    arrow: str


def _rank(value: Any) -> tuple[int, Any]:
    """Numbers before text; datetimes as numbers (values of one column share a type,
    except parameters, which may mix)."""
    if isinstance(value, bool):
        return (1, str(value).lower())
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (1, str(value))


def sort_rows(rows: Sequence[R], value: Callable[[R, str], Any], sort: Sort) -> list[R]:
    """``rows`` by the column ``sort.key``; rows without a value last in either order,
    ties in their given order."""
    present = [r for r in rows if value(r, sort.key) is not None]
    absent = [r for r in rows if value(r, sort.key) is None]
    present.sort(key=lambda r: _rank(value(r, sort.key)), reverse=sort.order == "desc")
    return present + absent


def headers(
    columns: Sequence[Column], sort: Sort, query: Mapping[str, str], path: str
) -> list[Header]:
    """The header cells: a link per column that sorts by it (the other way round when the
    table is sorted by it already), keeping the page's other query parameters."""
    kept = {k: v for k, v in query.items() if k not in ("sort", "order", "page", "fragment")}
    out = []
    for column in columns:
        current = column.key == sort.key
        order = ("desc" if sort.order == "asc" else "asc") if current else column.first
        href = f"{path}?{urlencode({**kept, 'sort': column.key, 'order': order})}"
        aria = ("ascending" if sort.order == "asc" else "descending") if current else "none"
        arrow = ("▲" if sort.order == "asc" else "▼") if current else ""
        out.append(Header(column, href, aria, arrow))
    return out


# ----------------------------------------------------------------------------- trials


def trial_columns(objective: str, mode: str, params: Sequence[str]) -> list[Column]:
    best_first: Order = "asc" if mode == "min" else "desc"
    columns = [
        Column("trial", "trial"),
        Column("state", "state"),
        Column("score", objective, numeric=True, first=best_first),
    ]
    if objective != PRIMARY_SCORE:
        columns.append(Column(PRIMARY_SCORE, PRIMARY_SCORE, numeric=True, first="desc"))
    columns += [Column(f"{PARAM}{p}", p, numeric=True) for p in params]
    columns += [
        Column("steps", "steps", numeric=True),
        Column("wall_seconds", "wall s", numeric=True),
        Column("accelerator_hours", "acc-h", numeric=True),
        Column("started_at", "started"),
        Column("finished_at", "ended"),
    ]
    return columns


def trial_value(trial: TrialRow, key: str) -> Any:
    if key.startswith(PARAM):
        return trial.params.get(key.removeprefix(PARAM))
    if key == "trial":
        return trial.trial_id
    return getattr(trial, key, None)


def default_trial_sort(objective_mode: str) -> Sort:
    return Sort("score", "asc" if objective_mode == "min" else "desc")


# ----------------------------------------------------------------------------- runs

RUN_COLUMNS = [
    Column("name", "name"),
    Column("kind", "kind"),
    Column("namespace", "namespace"),
    Column("phase", "phase"),
    Column("progress", "progress", numeric=True, first="desc"),
    Column("score", "best score", numeric=True, first="desc"),
    Column("accelerator_hours", "acc-h", numeric=True, first="desc"),
    Column("started_at", "started", first="desc"),
    Column("ended_at", "ended", first="desc"),
]
DEFAULT_RUN_SORT = Sort("started_at", "desc")


def run_value(row: RunRow, key: str) -> Any:
    if key == "progress":
        return row.done
    return getattr(row, key, None)


@dataclass(frozen=True)
class RunFilter:
    """The list's filter form: exact namespace, phase and kind; text in the name."""

    namespace: str = ""
    phase: str = ""
    kind: str = ""
    text: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> RunFilter:
        return cls(
            namespace=query.get("namespace", "").strip(),
            phase=query.get("phase", "").strip(),
            kind=query.get("kind", "").strip(),
            text=query.get("q", "").strip(),
        )

    def keeps(self, row: RunRow) -> bool:
        return (
            (not self.namespace or row.namespace == self.namespace)
            and (not self.phase or row.phase == self.phase)
            and (not self.kind or row.kind == self.kind)
            and (not self.text or self.text.lower() in row.name.lower())
        )


@dataclass(frozen=True)
class Page:
    """One page of a long list."""

    number: int
    count: int
    first: int
    """Index of the page's first row."""

    @classmethod
    def of(cls, query: Mapping[str, str], total: int, per_page: int) -> Page:
        count = max(1, -(-total // per_page))
        try:
            number = min(max(1, int(query.get("page", "1"))), count)
        except ValueError:
            number = 1
        return cls(number, count, (number - 1) * per_page)

    def href(self, number: int, query: Mapping[str, str], path: str) -> str:
        kept = {k: v for k, v in query.items() if k not in ("page", "fragment")}
        return f"{path}?{urlencode({**kept, 'page': str(number)})}"
