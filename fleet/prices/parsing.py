"""Day-ahead price files: a CSV of (start with offset, price) and the ENTSO-E transparency platform's
Publication_MarketDocument (document type A44). Django-free: the service stores what these return.

A day is the zone's local delivery day, midnight to midnight: 24 hours, 23 on the spring-forward
day and 25 on the autumn one (92 or 100 quarter-hours). Every interval is kept in UTC.

Every refusal is a PriceFileError naming the line (or the XML element) and the reason: a gap, a
duplicate, the wrong day, an unknown unit, an offset that does not match the zone's (a DST mismatch).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from defusedxml import ElementTree

RESOLUTIONS = {"PT15M": 15, "PT60M": 60, "PT1H": 60}
# The unit a price is given in, normalised to a key; the compiler compares prices per MWh.
UNITS = {"mwh": "MWh", "eur/mwh": "MWh", "/mwh": "MWh", "kwh": "kWh", "eur/kwh": "kWh", "/kwh": "kWh"}
PER_MWH = {"MWh": Decimal(1), "kWh": Decimal(1000)}


class PriceFileError(ValueError):
    """A refused price file; ``line`` is the 1-based line (or None for the file as a whole)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason, self.line = reason, line
        super().__init__(f"line {line}: {reason}" if line else reason)


@dataclass(frozen=True)
class Interval:
    start: datetime  # UTC
    minutes: int  # 15 or 60
    price: Decimal  # in the series' unit

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass
class ParsedPrices:
    day: date  # the local delivery day
    minutes: int
    unit: str  # "MWh" or "kWh"
    currency: str
    intervals: list[Interval] = field(default_factory=list)

    def per_mwh(self, price: Decimal) -> Decimal:
        return price * PER_MWH[self.unit]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC instants of local midnight at the start and at the end of ``day``."""
    start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return start, end


def normalise_unit(raw: str, line: int | None = None) -> str:
    key = raw.strip().lower().replace(" ", "").replace("€", "eur")
    key = re.sub(r"^[a-z]{3}(?=/)", "eur", key)  # any currency code before the slash
    if key not in UNITS:
        raise PriceFileError(f"unknown unit {raw.strip()!r}: give the price per MWh or per kWh", line)
    return UNITS[key]


def _check_day(points: list[tuple[datetime, Decimal, int]], minutes: int, tz: ZoneInfo,
               expected_day: date | None) -> tuple[date, list[Interval]]:
    """Check that sorted (start, price, line) points cover one local day exactly; return it."""
    if not points:
        raise PriceFileError("no prices in the file")
    first_start, _, first_line = points[0]
    day = first_start.astimezone(tz).date()
    if expected_day is not None and day != expected_day:
        raise PriceFileError(f"the prices are for {day:%Y-%m-%d}, not for {expected_day:%Y-%m-%d}", first_line)
    start, end = day_bounds(day, tz)
    if first_start != start:
        raise PriceFileError(f"the day starts at local midnight ({start.astimezone(tz):%H:%M %z}), "
                             f"not at {first_start.astimezone(tz):%H:%M %z}", first_line)
    expected = start
    for at, _, line in points:
        if at >= end:
            raise PriceFileError(f"{at.astimezone(tz):%Y-%m-%d %H:%M %z} is on the next day: one file, one day",
                                 line)
        if at < expected:
            raise PriceFileError(f"duplicate interval at {at.astimezone(tz):%Y-%m-%d %H:%M %z}", line)
        if at > expected:
            raise PriceFileError(f"gap: no price from {expected.astimezone(tz):%H:%M %z} to "
                                 f"{at.astimezone(tz):%H:%M %z}", line)
        expected = at + timedelta(minutes=minutes)
    if expected != end:
        raise PriceFileError(f"the day ends early: no price after {expected.astimezone(tz):%H:%M %z} "
                             f"({len(points)} of {int((end - start) / timedelta(minutes=minutes))} intervals)",
                             points[-1][2])
    return day, [Interval(at, minutes, price) for at, price, _ in points]


def _price(raw: str, line: int | None) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", "."))
    except InvalidOperation:
        raise PriceFileError(f"{raw.strip()!r} is not a price", line)
    if not value.is_finite() or abs(value) >= Decimal("100000"):
        raise PriceFileError(f"{raw.strip()!r} is not a plausible price", line)
    return value


# CSV ------------------------------------------------------------------------------------------

def parse_csv(text: str, tz: ZoneInfo, *, unit: str = "MWh", currency: str = "EUR",
              expected_day: date | None = None) -> ParsedPrices:
    """Parse ``start,price[,unit]`` rows (a header first) of one local day in ``tz``.

    ``start`` is ISO 8601 with its UTC offset (``2026-03-29T03:00+02:00`` or ``...Z``); the offset
    must be the zone's at that instant. Without a unit column, ``unit`` applies. Returns the day.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=_delimiter(text))
    rows = [(number, row) for number, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    if not rows:
        raise PriceFileError("the file is empty")
    header_line, header = rows[0]
    names = [cell.strip().lower() for cell in header]
    if "start" not in names or "price" not in names:
        raise PriceFileError("the first line must name the columns: start,price (and optionally unit)", header_line)
    i_start, i_price = names.index("start"), names.index("price")
    i_unit = names.index("unit") if "unit" in names else None
    units: set[str] = set() if i_unit is not None else {normalise_unit(unit)}
    points: list[tuple[datetime, Decimal, int]] = []
    for line, row in rows[1:]:
        if len(row) < len(names):
            raise PriceFileError(f"expected {len(names)} columns, found {len(row)}", line)
        at = _instant(row[i_start], tz, line)
        if i_unit is not None:
            units.add(normalise_unit(row[i_unit], line))
            if len(units) > 1:
                raise PriceFileError("the unit changes within the file", line)
        points.append((at, _price(row[i_price], line), line))
    minutes = _resolution(points)
    points.sort(key=lambda p: (p[0], p[2]))
    day, intervals = _check_day(points, minutes, tz, expected_day)
    return ParsedPrices(day=day, minutes=minutes, unit=units.pop(), currency=currency, intervals=intervals)


def _delimiter(text: str) -> str:
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return ";" if first.count(";") > first.count(",") else ","


def _instant(raw: str, tz: ZoneInfo, line: int) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise PriceFileError(f"{raw.strip()!r} is not a time like 2026-03-29T03:00+02:00", line)
    if at.tzinfo is None:
        raise PriceFileError(f"{raw.strip()!r} has no UTC offset (write +01:00, +02:00 or Z)", line)
    utc = at.astimezone(UTC)
    zone_offset = utc.astimezone(tz).utcoffset()
    if at.utcoffset() != zone_offset:
        raise PriceFileError(f"DST mismatch: {raw.strip()} has offset {at:%z} but {tz.key} is at "
                             f"{utc.astimezone(tz):%z} then", line)
    return utc


def _resolution(points: list[tuple[datetime, Decimal, int]]) -> int:
    """Return 15 or 60: the smallest step between distinct starts."""
    starts = sorted({p[0] for p in points})
    if len(starts) < 2:
        raise PriceFileError("one price is not a day", points[0][2] if points else None)
    step = min(b - a for a, b in zip(starts, starts[1:], strict=False))
    minutes = int(step.total_seconds() // 60)
    if minutes not in (15, 60) or step.total_seconds() % 60:
        raise PriceFileError(f"intervals of {step} are neither 15 nor 60 minutes")
    bad = next((p for p in points if (p[0] - starts[0]) % timedelta(minutes=minutes)), None)
    if bad is not None:
        raise PriceFileError(f"{bad[0]:%H:%M} UTC is off the {minutes}-minute grid", bad[2])
    return minutes


# ENTSO-E A44 -----------------------------------------------------------------------------------

def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Any, name: str) -> Any:
    return next((c for c in element if _local_name(c.tag) == name), None)


def _children(element: Any, name: str) -> list[Any]:
    return [c for c in element if _local_name(c.tag) == name]


def _text(element: Any, path: str, where: str) -> str:
    node = element
    for name in path.split("/"):
        node = _child(node, name) if node is not None else None
    if node is None or not (node.text or "").strip():
        raise PriceFileError(f"{where}: missing {path}")
    return str(node.text).strip()


def _utc(raw: str, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise PriceFileError(f"{where}: {raw!r} is not a time")
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def parse_a44(data: bytes | str, tz: ZoneInfo, *, expected_day: date | None = None) -> ParsedPrices:
    """Parse a Publication_MarketDocument (A44) of one local delivery day in ``tz``.

    TimeSeries > Period > timeInterval, resolution (PT15M or PT60M) and Points (position from 1,
    price.amount). curveType A03 leaves out a position whose price repeats the previous one; A01
    lists every position (a missing one is a gap). Raises PriceFileError; an Acknowledgement_
    MarketDocument (the platform's "no data" answer) is refused with its reason.
    """
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise PriceFileError(f"not XML: {exc}")
    except Exception as exc:  # defusedxml refuses entities and DTDs with its own errors
        raise PriceFileError(f"refused XML: {exc.__class__.__name__}")
    kind = _local_name(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reason = _child(root, "Reason")
        text = _child(reason, "text") if reason is not None else None
        raise PriceFileError(f"ENTSO-E answered with no prices: {(text.text if text is not None else '') or kind}")
    if kind != "Publication_MarketDocument":
        raise PriceFileError(f"a {kind} is not a day-ahead price document (Publication_MarketDocument, A44)")
    doc_type = _child(root, "type")
    if doc_type is not None and (doc_type.text or "").strip() != "A44":
        raise PriceFileError(f"document type {(doc_type.text or '').strip()} is not A44 (day-ahead prices)")
    points: list[tuple[datetime, Decimal, int]] = []
    units: set[str] = set()
    currencies: set[str] = set()
    resolutions: set[int] = set()
    for s, series in enumerate(_children(root, "TimeSeries"), start=1):
        where = f"TimeSeries {s}"
        currencies.add(_text(series, "currency_Unit.name", where))
        units.add(normalise_unit(_text(series, "price_Measure_Unit.name", where)))
        curve = (_child(series, "curveType").text or "").strip() if _child(series, "curveType") is not None else "A01"
        if curve not in ("A01", "A03"):
            raise PriceFileError(f"{where}: curveType {curve} is neither A01 nor A03")
        for p, period in enumerate(_children(series, "Period"), start=1):
            here = f"{where} Period {p}"
            start = _utc(_text(period, "timeInterval/start", here), here)
            end = _utc(_text(period, "timeInterval/end", here), here)
            resolution = _text(period, "resolution", here)
            if resolution not in RESOLUTIONS:
                raise PriceFileError(f"{here}: resolution {resolution} is neither PT15M nor PT60M")
            minutes = RESOLUTIONS[resolution]
            resolutions.add(minutes)
            count = (end - start) / timedelta(minutes=minutes)
            if count != int(count) or count <= 0:
                raise PriceFileError(f"{here}: {start:%H:%M}-{end:%H:%M} UTC is not whole {resolution} steps")
            points.extend(_period_points(period, start, int(count), minutes, curve, here, s * 100000 + p * 1000))
    if not points:
        raise PriceFileError("the document has no TimeSeries with prices")
    if len(units) > 1 or len(currencies) > 1 or len(resolutions) > 1:
        raise PriceFileError("the TimeSeries disagree on unit, currency or resolution")
    points.sort(key=lambda x: (x[0], x[2]))
    try:
        day, intervals = _check_day(points, resolutions.pop(), tz, expected_day)
    except PriceFileError as exc:
        # the "line" of an XML point is its TimeSeries/Period/position, spelled out
        raise PriceFileError(exc.reason + (f" ({_where(exc.line)})" if exc.line else ""))
    return ParsedPrices(day=day, minutes=intervals[0].minutes, unit=units.pop(), currency=currencies.pop(),
                        intervals=intervals)


def _where(key: int) -> str:
    return f"TimeSeries {key // 100000} Period {key // 1000 % 100} position {key % 1000}"


def _period_points(period: Any, start: datetime, count: int, minutes: int, curve: str, where: str,
                   key: int) -> list[tuple[datetime, Decimal, int]]:
    """Return (start, price, key) of every position 1..count of one Period (A03: fill repeats)."""
    given: dict[int, Decimal] = {}
    for point in _children(period, "Point"):
        raw = _text(point, "position", where)
        if not raw.isdigit() or not 1 <= int(raw) <= count:
            raise PriceFileError(f"{where}: position {raw} is outside 1-{count}")
        position = int(raw)
        if position in given:
            raise PriceFileError(f"{where}: duplicate position {position}")
        given[position] = _price(_text(point, "price.amount", f"{where} position {position}"), None)
    if 1 not in given:
        raise PriceFileError(f"{where}: position 1 is missing")
    out = []
    price = given[1]
    for position in range(1, count + 1):
        if position in given:
            price = given[position]
        elif curve == "A01":
            raise PriceFileError(f"{where}: gap at position {position} (curveType A01 lists every position)")
        out.append((start + timedelta(minutes=minutes * (position - 1)), price, key + position))
    return out
