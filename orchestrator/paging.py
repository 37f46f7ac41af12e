"""A page of a list the API and the console show a slice at a time (workflows, subscribers,
webhook deliveries, bulk jobs and their rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    #: How many there are in all, on every page.
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts; None on the last."""
        following = self.offset + len(self.items)
        return following if following < self.total else None
