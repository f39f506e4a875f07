"""Price files: CSV and ENTSO-E A44 fixtures (15 and 60 minutes, both DST days, a year boundary), and
every refusal naming its line and reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet.prices.parsing import PriceFileError, parse_a44, parse_csv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
BERLIN = ZoneInfo("Europe/Berlin")


def _read(name: str) -> str:
    return (FIXTURES / name).read_text()


def _contiguous(parsed) -> bool:  # type: ignore[no-untyped-def]
    return all(a.end == b.start for a, b in zip(parsed.intervals, parsed.intervals[1:], strict=False))


@pytest.mark.parametrize(("name", "day", "minutes", "count", "first_utc"), [
    ("day_60min_2026-06-15.csv", date(2026, 6, 15), 60, 24, datetime(2026, 6, 14, 22, tzinfo=UTC)),
    ("spring_15min_2026-03-29.csv", date(2026, 3, 29), 15, 92, datetime(2026, 3, 28, 23, tzinfo=UTC)),
    ("autumn_60min_2026-10-25_kwh.csv", date(2026, 10, 25), 60, 25, datetime(2026, 10, 24, 22, tzinfo=UTC)),
    ("new_year_60min_2027-01-01.csv", date(2027, 1, 1), 60, 24, datetime(2026, 12, 31, 23, tzinfo=UTC)),
])
def test_it_parses_csv_days_of_23_24_and_25_hours(name, day, minutes, count, first_utc):
    parsed = parse_csv(_read(name), BERLIN)
    assert (parsed.day, parsed.minutes, len(parsed.intervals)) == (day, minutes, count)
    assert parsed.intervals[0].start == first_utc
    last = parsed.intervals[-1].end.astimezone(BERLIN)
    assert (last.date(), last.hour, last.minute) == (day + timedelta(days=1), 0, 0)
    assert _contiguous(parsed)


def test_it_keeps_the_unit_of_a_kwh_csv_and_normalises_for_comparison():
    parsed = parse_csv(_read("autumn_60min_2026-10-25_kwh.csv"), BERLIN)
    assert parsed.unit == "kWh"
    first = parsed.intervals[0].price
    assert parsed.per_mwh(first) == first * 1000
    # the 25-hour day has the 02:00 hour twice, once at +02:00 and once at +01:00
    twos = [i.start for i in parsed.intervals if i.start.astimezone(BERLIN).hour == 2]
    assert len(twos) == 2 and twos[1] - twos[0] == timedelta(hours=1)


@pytest.mark.parametrize(("name", "day", "minutes", "count"), [
    ("a44_day_60min_2026-06-15.xml", date(2026, 6, 15), 60, 24),
    ("a44_spring_60min_2026-03-29.xml", date(2026, 3, 29), 60, 23),
    ("a44_autumn_15min_2026-10-25_A03.xml", date(2026, 10, 25), 15, 100),
    ("a44_new_year_15min_2027-01-01.xml", date(2027, 1, 1), 15, 96),
])
def test_it_parses_a44_documents(name, day, minutes, count):
    parsed = parse_a44((FIXTURES / name).read_bytes(), BERLIN)
    assert (parsed.day, parsed.minutes, len(parsed.intervals), parsed.unit, parsed.currency) == (
        day, minutes, count, "MWh", "EUR")
    assert _contiguous(parsed)


def test_an_a03_curve_repeats_the_previous_price_for_a_missing_position():
    text = _read("a44_autumn_15min_2026-10-25_A03.xml")
    assert text.count("<Point>") < 100  # the fixture leaves positions out
    parsed = parse_a44(text, BERLIN)
    positions = {int(p.split("</position>")[0]) for p in text.split("<position>")[1:]}
    missing = sorted(set(range(1, 101)) - positions)
    assert missing
    for position in missing:
        assert parsed.intervals[position - 1].price == parsed.intervals[position - 2].price


def test_the_same_day_from_csv_and_a44_agrees():
    csv_day = parse_csv(_read("day_60min_2026-06-15.csv"), BERLIN)
    xml_day = parse_a44(_read("a44_day_60min_2026-06-15.xml"), BERLIN)
    assert csv_day.intervals == xml_day.intervals


def _csv(*rows: str) -> str:
    return "start,price\n" + "\n".join(rows) + "\n"


def _hours(day: str = "2026-06-15", offset: str = "+02:00", skip: int | None = None) -> list[str]:
    return [f"{day}T{h:02d}:00{offset},{50 + h}" for h in range(24) if h != skip]


@pytest.mark.parametrize(("text", "line", "reason"), [
    (_csv(*_hours(skip=5)), 7, "gap: no price from 05:00"),
    (_csv(*_hours()[:10], _hours()[9], *_hours()[10:]), 12, "duplicate interval at 2026-06-15 09:00"),
    (_csv(*_hours()[:23]), 24, "the day ends early"),
    (_csv(*_hours(), "2026-06-16T00:00+02:00,3"), 26, "is on the next day"),
    (_csv(*_hours()[:3], "2026-06-15T03:00+01:00,5", *_hours()[4:]), 5, "DST mismatch"),
    (_csv(*_hours()[:3], "2026-06-15T03:00,5", *_hours()[4:]), 5, "has no UTC offset"),
    (_csv(*_hours()[:3], "2026-06-15T03:00+02:00,cheap", *_hours()[4:]), 5, "is not a price"),
    ("start,price,unit\n2026-06-15T00:00+02:00,5,EUR/MW\n", 2, "unknown unit 'EUR/MW'"),
    ("when,amount\n", 1, "must name the columns"),
])
def test_it_refuses_a_bad_csv_with_the_line_and_reason(text, line, reason):
    with pytest.raises(PriceFileError) as caught:
        parse_csv(text, BERLIN)
    assert caught.value.line == line
    assert reason in caught.value.reason


def test_it_refuses_the_wrong_day():
    with pytest.raises(PriceFileError, match="for 2026-06-15, not for 2026-06-16"):
        parse_csv(_read("day_60min_2026-06-15.csv"), BERLIN, expected_day=date(2026, 6, 16))


def test_a_spring_day_written_with_winter_offsets_is_a_dst_mismatch():
    rows = [f"2026-03-29T{h:02d}:00+01:00,{h}" for h in range(24)]
    with pytest.raises(PriceFileError) as caught:
        parse_csv(_csv(*rows), BERLIN)
    assert caught.value.line == 4 and "DST mismatch" in caught.value.reason  # 02:00+01:00 is 03:00+02:00


def test_a_winter_zone_file_uploaded_for_the_wrong_zone_is_refused():
    with pytest.raises(PriceFileError, match="DST mismatch"):
        parse_csv(_read("day_60min_2026-06-15.csv"), ZoneInfo("Europe/London"))


def _a44(points: str, curve: str = "A01", resolution: str = "PT60M", unit: str = "MWH") -> str:
    return (f'<Publication_MarketDocument xmlns="urn:x"><type>A44</type><TimeSeries>'
            f"<currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>{unit}</price_Measure_Unit.name>"
            f"<curveType>{curve}</curveType><Period><timeInterval><start>2026-06-14T22:00Z</start>"
            f"<end>2026-06-15T22:00Z</end></timeInterval><resolution>{resolution}</resolution>{points}"
            f"</Period></TimeSeries></Publication_MarketDocument>")


def _points(positions) -> str:  # type: ignore[no-untyped-def]
    return "".join(f"<Point><position>{p}</position><price.amount>{p}.5</price.amount></Point>" for p in positions)


@pytest.mark.parametrize(("text", "reason"), [
    (_a44(_points([p for p in range(1, 25) if p != 7])), "gap at position 7"),
    (_a44(_points([*range(1, 25), 3])), "duplicate position 3"),
    (_a44(_points(range(1, 25)), resolution="PT30M"), "resolution PT30M"),
    (_a44(_points(range(1, 25)), unit="MW"), "unknown unit 'MW'"),
    (_a44(_points(range(1, 26))), "position 25 is outside 1-24"),
    (_a44(_points(range(2, 25)), curve="A03"), "position 1 is missing"),
    ("<Acknowledgement_MarketDocument><Reason><code>999</code><text>No matching data found</text></Reason>"
     "</Acknowledgement_MarketDocument>", "No matching data found"),
    ("<Publication_MarketDocument><type", "not XML"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "refused XML"),
])
def test_it_refuses_a_bad_a44(text, reason):
    with pytest.raises(PriceFileError) as caught:
        parse_a44(text, BERLIN)
    assert reason in caught.value.reason


def test_an_a03_curve_fills_missing_positions_in_a_small_document():
    parsed = parse_a44(_a44(_points([1, 2, 10, *range(11, 25)]), curve="A03"), BERLIN)
    assert [i.price for i in parsed.intervals[1:9]] == [Decimal("2.5")] * 8  # positions 2-9


def test_an_a44_for_a_day_in_another_zone_is_refused_as_not_starting_at_midnight():
    with pytest.raises(PriceFileError, match="starts at local midnight"):
        parse_a44(_read("a44_day_60min_2026-06-15.xml"), ZoneInfo("Europe/Helsinki"))
