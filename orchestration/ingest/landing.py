"""Find the landing files of a source and read their names: `<source>_<YYYY-MM-DD>[_<part>].<ext>`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestration.ingest.sources import SOURCES, SourceSpec


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path
    extract_date: date | None
    part: str | None
    file_format: str
    name_error: str | None = None

    @property
    def file_name(self) -> str:
        return self.path.name


def parse_name(spec: SourceSpec, path: Path) -> LandingFile:
    pattern = re.compile(
        rf"^{re.escape(spec.name)}_(\d{{4}}-\d{{2}}-\d{{2}})(?:_([^.]+))?\.({'|'.join(spec.extensions)})$"
    )
    match = pattern.match(path.name)
    extension = path.suffix.lstrip(".").lower()
    if not match:
        expected = f"{spec.name}_<YYYY-MM-DD>[_<part>].{{{','.join(spec.extensions)}}}"
        return LandingFile(spec.name, path, None, None, extension, f"file name does not match {expected}")
    try:
        extract_date = date.fromisoformat(match.group(1))
    except ValueError:
        return LandingFile(spec.name, path, None, None, extension, f"{match.group(1)} is not a calendar date")
    return LandingFile(spec.name, path, extract_date, match.group(2), match.group(3))


def landing_files(
    extracts_dir: Path, spec: SourceSpec, dates: tuple[date, date] | None = None
) -> list[LandingFile]:
    """The source's files in delivery order (extract date, then file name in byte order).

    With `dates` (first, last), only files of those extract dates, plus files whose name carries no
    valid date: those can belong to no partition, so every load records them as rejected.
    """
    folder = extracts_dir / spec.name
    if not folder.is_dir():
        return []
    found = [
        parse_name(spec, path)
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".")
    ]
    if dates is not None:
        first, last = dates
        found = [f for f in found if f.extract_date is None or first <= f.extract_date <= last]
    return sorted(found, key=lambda f: (f.extract_date or date.min, f.file_name.encode()))


def required_sources_without_files(extracts_dir: Path, first: date, last: date) -> list[str]:
    """The required sources (orders, payments, inventory movements) with no landing file dated from `first`
    to `last` (a file whose name carries no valid date counts for none): a run of those dates would fail
    its loaders."""
    return [
        spec.name
        for spec in SOURCES.values()
        if spec.required_source
        and not any(f.extract_date is not None for f in landing_files(extracts_dir, spec, (first, last)))
    ]


def required_source_dates(extracts_dir: Path) -> dict[str, set[date]]:
    """Required source -> the extract dates of its landing files."""
    return {
        spec.name: {f.extract_date for f in landing_files(extracts_dir, spec) if f.extract_date is not None}
        for spec in SOURCES.values()
        if spec.required_source
    }


def incomplete_dates(extracts_dir: Path, dates: Iterable[date]) -> dict[date, list[str]]:
    """Of `dates`, those a run of that date alone cannot take yet, with the required sources that have no
    landing file of the date (one source delivered before the others)."""
    dated = required_source_dates(extracts_dir)
    missing = {day: [source for source, days in dated.items() if day not in days] for day in dates}
    return {day: sources for day, sources in missing.items() if sources}


def latest_complete_date(extracts_dir: Path, bounds: tuple[date, date]) -> date | None:
    """The latest extract date within `bounds` with a landing file of every required source."""
    complete = set.intersection(*required_source_dates(extracts_dir).values())
    return max((day for day in complete if bounds[0] <= day <= bounds[1]), default=None)


def waiting_message(waiting: dict[date, list[str]]) -> str:
    days = ", ".join(
        f"{day} (no {' or '.join(sources)} file yet)" for day, sources in sorted(waiting.items())
    )
    return (
        f"Left out, until every required source has delivered a file of the date: {days}. Its files are"
        " loaded by the first run of the date after that."
    )
