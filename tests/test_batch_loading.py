"""Small landing files are read in batches (orchestration/ingest/loader.py): a batch must load exactly
what loading its files one by one loads, whatever bad files it holds."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.ingest import loader
from orchestration.ingest.landing import landing_files
from orchestration.ingest.loader import load_file, load_source
from orchestration.ingest.schema import create_raw_schema
from orchestration.ingest.sources import ORDERS, PAYMENTS, SourceSpec

PAYMENTS_HEADER = "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method"


def _payment(n: int, *, amount: str = "10.00") -> str:
    return f"P{n},O{n},capture,{amount},USD,succeeded,2026-11-01T10:00:00Z,ref{n},card"


def _order(n: int, *, lines: str | None = None) -> str:
    lines = lines or f'[{{"line_id":"1","sku":"S{n}","quantity":1,"unit_price":"10.00"}}]'
    return (
        f'{{"order_id":"O{n}","customer_id":"C{n}","status":"paid","currency":"USD",'
        f'"created_at":"2026-11-01T10:00:00Z","updated_at":"2026-11-0{1 + n % 9}T10:05:00+01:00",'
        f'"lines":{lines},"total_amount":"10.00"}}'
    )


PAYMENT_FILES: dict[str, bytes] = {
    "payments_2026-11-01.csv": "\n".join([PAYMENTS_HEADER, _payment(1), _payment(2, amount="ten")]).encode(),
    "payments_2026-11-02.csv": "\r\n".join(
        [
            PAYMENTS_HEADER,
            _payment(3),
            'P4,O4,capture,1.00,USD,succeeded,2026-11-01T10:00:00Z,"multi\r\nline",card',
        ]
    ).encode(),
    "payments_2026-11-03.csv": b"",
    "payments_2026-11-04.csv": "\n".join([PAYMENTS_HEADER, _payment(5), "P6,too,few"]).encode(),
    "payments_2026-11-05.csv": "\n".join(
        ["order_id,payment_id,extra," + PAYMENTS_HEADER.split(",", 2)[2], ""]
    ).encode()
    + b"O7,P7,x,capture,7.00,USD,succeeded,2026-11-01T10:00:00Z,ref7,card\n",
    "payments_2026-11-06.csv": "\n".join([PAYMENTS_HEADER, _payment(8)]).encode("utf-8") + b"\n\xff\xfe\n",
    "payments_2026-11-07.csv": "\n".join(["payment_id,order_id", "P9,O9"]).encode(),
    "payments_2026-11-08.csv": "\n".join(
        [PAYMENTS_HEADER, 'P10,O10,capture,1.00,USD,succeeded,x,"open']
    ).encode(),
    "payments_2026-11-09.csv": "\n".join([PAYMENTS_HEADER, _payment(11), _payment(12), ""]).encode(),
    "payments_bad-name.csv": "\n".join([PAYMENTS_HEADER, _payment(13)]).encode(),
    # a quote left open at the end of one file must not be closed by the next file of its batch
    "payments_2026-11-10.csv": "\n".join(
        [PAYMENTS_HEADER, 'P14,O14,capture,1.00,USD,succeeded,x,"open']
    ).encode(),
    "payments_2026-11-10_b.csv": "\n".join([PAYMENTS_HEADER, 'closed",card', _payment(15)]).encode(),
}

ORDER_FILES: dict[str, bytes] = {
    "orders_2026-11-01.jsonl": "\n".join([_order(1), "{not json", "[1, 2]", _order(2)]).encode(),
    "orders_2026-11-02.jsonl": "\n".join(
        [
            _order(
                3,
                lines='[{"line_id":"1","sku":"S","quantity":1,"unit_price":"1.00"},'
                '{"line_id":"1","sku":"T","quantity":"2","unit_price":"1.00"}]',
            ),
            _order(4),
        ]
    ).encode(),
    "orders_2026-11-03.jsonl": b"\n\n",
    "orders_2026-11-04.jsonl": b'[1]\n"text"\n',
    "orders_2026-11-05.jsonl": "\ufeff".encode() + "\r\n".join([_order(5), _order(6, lines="[]")]).encode(),
    "orders_2026-11-06.jsonl": "\n".join([_order(7), _order(8, lines='"none"')]).encode(),
    # line 1 of every file has line_id 1: a duplicate only within one document
    **{
        f"orders_2026-11-{day}.jsonl": "\n".join([_order(day), _order(day + 50)]).encode()
        for day in range(10, 20)
    },
}


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "payments": "select * exclude (load_id) from raw.payments",
        "orders": "select * exclude (load_id) from raw.orders",
        "order_lines": "select * exclude (load_id) from raw.order_lines",
        "quarantine": "select * exclude (load_id, quarantined_at) from raw.quarantine",
        "manifest": "select * exclude (load_id, loaded_at) from raw.load_manifest",
    }
    return {name: sorted(con.execute(sql).fetchall(), key=repr) for name, sql in queries.items()}


REJECTED = {
    "payments": {
        "payments_2026-11-03.csv": "empty_file",
        "payments_2026-11-06.csv": "not_utf8",
        "payments_2026-11-07.csv": "wrong_header",
        "payments_bad-name.csv": "bad_file_name",
    },
    "orders": {"orders_2026-11-03.jsonl": "empty_file", "orders_2026-11-04.jsonl": "not_json_lines"},
}


@pytest.mark.parametrize(("spec", "files"), [(PAYMENTS, PAYMENT_FILES), (ORDERS, ORDER_FILES)])
def test_a_batch_loads_what_its_files_load_one_by_one(
    tmp_path: Path, spec: SourceSpec, files: dict[str, bytes]
) -> None:
    landing = tmp_path / "landing"
    _write_files(landing / spec.name, files)
    found = landing_files(landing, spec)
    batches = loader._batches(found, threads=2)
    assert any(
        len(batch) > 1 and not {file.file_name for file in batch} & REJECTED[spec.name].keys()
        for batch in batches
    ), "small files of one format share a batch"
    if spec is PAYMENTS:
        open_then_closed = {"payments_2026-11-10.csv", "payments_2026-11-10_b.csv"}
        assert any(open_then_closed <= {file.file_name for file in batch} for batch in batches)

    batched = duckdb.connect(str(tmp_path / "batched.duckdb"))
    one_by_one = duckdb.connect(str(tmp_path / "one_by_one.duckdb"))
    try:
        for _ in range(2):  # the second load finds every file unchanged
            result = load_source(batched, spec, landing)
            create_raw_schema(one_by_one)
            statuses = [load_file(one_by_one, spec, file, "one-by-one") for file in found]
            assert sorted(result.statuses.elements()) == sorted(statuses)
        assert _tables(batched) == _tables(one_by_one)
        rejected = {
            row[0]: row[1]
            for row in batched.execute(
                "select file_name, error from raw.load_manifest where status = 'rejected'"
            ).fetchall()
        }
    finally:
        batched.close()
        one_by_one.close()
    # each bad file is rejected alone, with its own reason; the files batched with it load
    assert {name: reason.split(":")[0] for name, reason in rejected.items()} == REJECTED[spec.name]


def test_a_corrected_file_replaces_its_rows_within_a_batch(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "payments"
    _write_files(
        folder, {name: PAYMENT_FILES[name] for name in ("payments_2026-11-01.csv", "payments_2026-11-09.csv")}
    )
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        load_source(con, PAYMENTS, landing)
        (folder / "payments_2026-11-01.csv").write_bytes("\n".join([PAYMENTS_HEADER, _payment(21)]).encode())
        (folder / "payments_2026-11-02.csv").write_bytes("\n".join([PAYMENTS_HEADER, _payment(22)]).encode())
        result = load_source(con, PAYMENTS, landing)
        assert dict(result.statuses) == {"replaced": 1, "loaded": 1, "skipped_duplicate": 1}
        ids = [row[0] for row in con.execute("select payment_id from raw.payments order by 1").fetchall()]
        assert ids == ["P11", "P12", "P21", "P22"]
        assert con.execute("select count(*) from raw.quarantine").fetchone() == (0,)
    finally:
        con.close()
