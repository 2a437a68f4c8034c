"""The page `plan` and `report` write: sections of labelled lines, and the cost figures the chart
draws. Rendering lives in gpubox/render.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[Row]
    note: str = ""


@dataclass(frozen=True)
class Cost:
    """A month of one workstation: `expected` at the hours given, `worst` as far as autostop lets it run."""

    hourly: float
    expected_hours_per_day: float
    worst_hours_per_day: float
    disk_month: float
    days: int

    @property
    def expected(self) -> float:
        return round(self.hourly * self.expected_hours_per_day * self.days + self.disk_month, 2)

    @property
    def worst(self) -> float:
        return round(self.hourly * self.worst_hours_per_day * self.days + self.disk_month, 2)


@dataclass(frozen=True)
class Document:
    title: str
    summary: str
    sections: list[Section]
    cost: Cost | None = None
    footer: list[str] = field(default_factory=list)


def money(amount: float) -> str:
    return f"${amount:,.2f}"
