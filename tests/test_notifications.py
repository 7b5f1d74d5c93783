"""Digests per route through real runs, to a real HTTP server on 127.0.0.1 and to a file: a failed delivery is
retried by the next run, a rerun sends nothing new, a crowded route gets one systemic alert."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main
from orchestration.publish.notify import send_digests
from orchestration.routing import Destination, Notifications
from orchestration.settings import PROJECT_ROOT
from tests.conftest import PipelineEnv, pipeline_env, use_env

CAP = 6
WEBHOOK_ENV = "ORDER_AUDIT_TEST_WEBHOOK"


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []
    failing = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if Receiver.failing:
            self.send_response(500)
        else:
            Receiver.received.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()


@pytest.fixture(scope="module")
def notified(
    tmp_path_factory: pytest.TempPathFactory, isolated_environ: None, server: str
) -> Iterator[PipelineEnv]:
    from orchestration.generator import generate

    env = pipeline_env(tmp_path_factory.mktemp("notify"))
    generate(env.extracts, orders=150, seed=3, days=4)
    text = (PROJECT_ROOT / "routing.yml").read_text(encoding="utf-8")
    rules = text[: text.index("\nnotifications:")]
    routing = env.root / "routing.yml"
    routing.write_text(
        rules
        + f"""
notifications:
  max_lines_per_route: {CAP}
  destinations:
    - route: catalog-review
      file: digests
    - route: "*"
      webhook_env: {WEBHOOK_ENV}
""",
        encoding="utf-8",
    )
    use_env(env)
    os.environ["ORDER_AUDIT_ROUTING"] = str(routing)
    os.environ[WEBHOOK_ENV] = server
    yield env
    os.environ.pop("ORDER_AUDIT_ROUTING", None)
    os.environ.pop(WEBHOOK_ENV, None)


def _outbox(env: PipelineEnv) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        return con.execute(
            "select route, status, count(*), max(attempts), max(last_error) from notify.outbox group by all order by all"
        ).fetchall()
    finally:
        con.close()


def test_failed_deliveries_are_retried_and_a_rerun_sends_nothing_new(
    notified: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    Receiver.failing = True
    assert main(["run"]) == 0, "a notification never fails the run"
    printed = capsys.readouterr().out
    assert "pending: the webhook answered HTTP 500 (retried next run)" in printed
    first = _outbox(notified)
    webhook_routes = {route for route, *_ in first if route != "catalog-review"}
    assert webhook_routes
    for route, status, _, attempts, error in first:
        if route == "catalog-review":
            assert (status, attempts, error) == ("sent", 1, None)
        else:
            assert (status, attempts, error) == ("pending", 1, "the webhook answered HTTP 500")
    digest_file = notified.root / "digests" / "catalog-review.jsonl"
    ((catalog_digest),) = [json.loads(line) for line in digest_file.read_text().splitlines()]
    assert catalog_digest["route"] == "catalog-review" and catalog_digest["text"].startswith(
        "*order-audit · catalog-review*"
    )

    Receiver.failing = False
    assert main(["run"]) == 0
    assert "NOT SENT" not in capsys.readouterr().out
    pending = {route: count for route, _, count, *_ in first if route in webhook_routes}
    by_route = {}
    for message in Receiver.received:
        route = message["text"].split(" · ")[1].split("*")[0].strip()
        by_route[route] = message["text"]
    assert set(by_route) == webhook_routes and len(Receiver.received) == len(webhook_routes)
    for route, text in by_route.items():
        if int(pending[route]) > CAP:  # type: ignore[call-overload]
            assert "SYSTEMIC ALERT" in text and f"{pending[route]} changes in one run" in text
        else:
            assert text.count("\n• ") == pending[route], route
    assert {status for _, status, *_ in _outbox(notified)} <= {"sent", "summarized"}
    assert any(status == "summarized" for _, status, *_ in _outbox(notified)), "a route above the cap"

    sent = len(Receiver.received)
    assert main(["run"]) == 0
    assert len(Receiver.received) == sent, "a rerun sends nothing new"
    assert len(digest_file.read_text().splitlines()) == 1


def test_a_webhook_whose_variable_is_unset_is_reported_not_raised(tmp_path: Path) -> None:
    os.environ.pop("ORDER_AUDIT_UNSET_HOOK", None)
    item = {
        "notification_key": "k",
        "route": "r",
        "exception_id": "e" * 32,
        "kind": "new",
        "priority": "p1",
        "exception_code": "UNDERPAID",
        "entity_id": "ORD-1",
        "amount_at_risk": None,
        "amount_at_risk_currency": None,
        "due_at": None,
        "detail": "d",
    }
    (delivery,) = send_digests(
        {"r": [item]}, Notifications((Destination("*", webhook_env="ORDER_AUDIT_UNSET_HOOK"),)), tmp_path
    )
    assert delivery.error == "the environment variable ORDER_AUDIT_UNSET_HOOK (the webhook URL) is not set"
