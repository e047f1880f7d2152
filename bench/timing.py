"""Server-side timing shared by the benchmarks: a WSGI middleware that times each request to the end of
its body and counts its SQL statements, and a table row of medians and p95 per request kind."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import sqlalchemy as sa


class ServerTimer:
    """WSGI middleware: the time from the request's arrival to the end of its body, and the SQL
    statements sent meanwhile (counted by `count_statements`)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.last_s = 0.0
        self.statements = 0
        self.last_statements = 0

    def count_statements(self, engine) -> None:
        def count(*_args) -> None:
            self.statements += 1

        sa.event.listen(engine, "before_cursor_execute", count)

    def __call__(self, environ, start_response):
        self.statements = 0
        started = time.perf_counter()
        result = self.wsgi_app(environ, start_response)
        try:
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        self.last_s = time.perf_counter() - started
        self.last_statements = self.statements
        return body


@dataclass
class Series:
    name: str
    server_ms: list[float]
    client_ms: list[float]
    budget_ms: float | None = None
    size_bytes: int = 0
    statements: list[int] | None = None

    @staticmethod
    def p95(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[max(0, round(0.95 * len(ordered)) - 1)]

    def row(self) -> str:
        median, p95 = statistics.median(self.server_ms), self.p95(self.server_ms)
        budget = f"{self.budget_ms:.0f}" if self.budget_ms else "–"
        verdict = ("yes" if p95 < self.budget_ms else "NO") if self.budget_ms else "–"
        client, kib = statistics.median(self.client_ms), self.size_bytes / 1024
        sql = f"{statistics.median(self.statements):.0f}" if self.statements else "–"
        return (
            f"{self.name:<44} {len(self.server_ms):>4} {median:>8.1f} {p95:>8.1f} {max(self.server_ms):>8.1f}"
            f" {client:>9.1f} {kib:>8.0f} {sql:>4} {budget:>7} {verdict:>4}"
        )


HEADER = (
    f"{'request (server ms)':<44} {'n':>4} {'median':>8} {'p95':>8} {'max':>8} {'client-med':>9}"
    f" {'KiB':>8} {'SQL':>4} {'budget':>7} {'ok':>4}"
)
