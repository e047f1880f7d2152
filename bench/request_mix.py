"""What one request of the load test's mix costs the web tier, measured in-process (no HTTP, no
concurrency): SQL statements, Python function calls and CPU per request.

The load test (bench/load.py) says whether the targets are met on this machine; this says where a
request's cost went, in figures that do not depend on how busy the host is (statements and function
calls are counts; the CPU figure does depend on the host, so compare it only within one run). The mix
is the read traffic of bench/locustfile.py: its task weights, the same URLs, one editor's session,
`--requests` requests drawn at random with a fixed seed; its writes (step edits) and fresh logins are
left out. With `--tree`, the web code is imported from another checkout (e.g. a `git worktree` of an
older commit), to compare two versions on the same database in the same minute.

    .venv/bin/python bench/load.py --seed-only              # the database, and the plan it prints
    .venv/bin/python bench/request_mix.py --plan /tmp/journeylens-load-XXXX/plan.json
    git worktree add /tmp/before <commit>
    .venv/bin/python bench/request_mix.py --plan ... --tree /tmp/before
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import pstats
import random
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", required=True, help="plan.json written by bench/load.py --seed-only")
    parser.add_argument("--tree", default=str(HERE.parent), help="the checkout whose webapp/ is measured")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=2, help="CPU passes (the lowest is printed too)")
    parser.add_argument("--per-task", action="store_true", help="also each task's cost and share")
    parser.add_argument("--profile", metavar="TASK", help="print where one task's time goes (cProfile)")
    parser.add_argument(
        "--statements", metavar="TASK", help="print the SQL one task runs, with each statement's time"
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import load  # bench/load.py: the database URLs and the app's configuration (it adds this repo)
    import sqlalchemy as sa

    tree = str(Path(args.tree).resolve())
    sys.path.insert(0, tree)  # before this repo, which load.py put on the path
    import webapp
    from webapp import create_app

    assert Path(webapp.__file__).resolve().is_relative_to(tree), f"webapp came from {webapp.__file__}"

    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    owner_url, app_url = load.database_urls(load.DEFAULT_SERVER)
    config = dict(load.app_config(app_url, owner_url, load.DEFAULT_REDIS), SESSION_COOKIE_SECURE=False)
    app = create_app(config, env="production")
    client = app.test_client()
    urls = _log_in_and_find_urls(client, plan)
    mix = {name: weight for name, weight in locust_weights().items() if name in urls}
    names = random.Random(1).choices(list(mix), weights=list(mix.values()), k=args.requests)

    def run() -> None:
        for name in names:
            url, headers = urls[name]
            client.get(url, headers=headers)

    run()  # warm: templates compiled, statements cached, pool filled
    statements = [0]

    def count(*_args) -> None:
        statements[0] += 1

    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    sa.event.listen(engine, "before_cursor_execute", count)
    run()
    sa.event.remove(engine, "before_cursor_execute", count)
    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()
    calls = pstats.Stats(profile).total_calls
    cpu = []
    for _ in range(args.repeat):
        started = time.process_time()
        run()
        cpu.append((time.process_time() - started) / len(names) * 1000)
    n = len(names)
    print(f"tree {tree}; {n} requests of the mix {dict(sorted(mix.items()))}")
    print(f"  SQL statements per request: {statements[0] / n:.2f} (pool pings not counted)")
    print(f"  Python function calls per request: {calls / n:,.0f}")
    print(f"  CPU per request: {', '.join(f'{c:.2f}' for c in cpu)} ms (lowest {min(cpu):.2f})")
    print(f"  host speed (CPU ms of a fixed workload): {load.host_speed()}")
    if args.per_task:
        _print_per_task(client, engine, urls, mix)
    if args.statements:
        _print_statements(client, engine, *urls[args.statements])
    if args.profile:
        url, headers = urls[args.profile]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(50):
            client.get(url, headers=headers)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
    return 0


def _print_per_task(client, engine, urls: dict, mix: dict[str, int], rounds: int = 100) -> None:
    """Each task alone: its statements, function calls and CPU per request, and its share of the mix's
    CPU (by weight)."""
    import sqlalchemy as sa

    costs = {}
    for name in mix:
        url, headers = urls[name]
        statements: list[str] = []
        listener = functools.partial(_note_statement, statements)
        sa.event.listen(engine, "before_cursor_execute", listener)
        status = client.get(url, headers=headers).status_code
        sa.event.remove(engine, "before_cursor_execute", listener)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(5):
            client.get(url, headers=headers)
        profile.disable()
        calls = pstats.Stats(profile).total_calls / 5
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for _ in range(rounds):
                client.get(url, headers=headers)
            best = min(best, (time.process_time() - started) / rounds * 1000)
        costs[name] = (status, len(statements), calls, best)
    total = sum(mix[name] * cpu for name, (*_, cpu) in costs.items())
    heads = ("weight", "status", "statements", "calls", "CPU ms", "share")
    print(f"  {'task':22} " + " ".join(f"{h:>{max(6, len(h))}}" for h in heads))
    by_share = sorted(costs.items(), key=lambda item: -mix[item[0]] * item[1][3])
    for name, (status, count_, calls, cpu) in by_share:
        share = mix[name] * cpu / total
        print(f"  {name:22} {mix[name]:6} {status:6} {count_:10} {calls:6,.0f} {cpu:6.2f} {share:6.1%}")


def _print_statements(client, engine, url: str, headers: dict, rounds: int = 30) -> None:
    """The SQL one request of a task runs, in order, each with its median wall time over `rounds`
    requests (the round trip on loopback: the web process's driver work, PostgreSQL's and the wait)."""
    import sqlalchemy as sa

    runs: list[list[tuple[str, float]]] = []
    started: list[float] = []

    def before(*_args) -> None:
        started.append(time.perf_counter())

    def after(_conn, _cursor, statement, *_args) -> None:
        runs[-1].append((statement, time.perf_counter() - started.pop()))

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(rounds):
            runs.append([])
            client.get(url, headers=headers)
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
    first = runs[0]
    total = 0.0
    for number, (statement, _) in enumerate(first):
        times = sorted(run[number][1] for run in runs if len(run) > number)
        median = times[len(times) // 2] * 1000
        total += median
        print(f"-- {number + 1}: {median:.2f} ms (median of {len(times)})\n{statement}")
    print(f"-- {len(first)} statements, {total:.1f} ms of round trips (sum of medians)")


def _note_statement(statements: list[str], _conn, _cursor, statement, *_args) -> None:
    statements.append(statement)


def locust_weights() -> dict[str, int]:
    """Each task of bench/locustfile.py with its weight, read from its source: importing locust would
    monkey-patch this process with gevent."""
    source = (HERE / "locustfile.py").read_text(encoding="utf-8")
    return {name: int(weight) for weight, name in TASK.findall(source)}


TASK = re.compile(r"@task\((\d+)\)\s+def (\w+)")


def _log_in_and_find_urls(client, plan: dict) -> dict[str, tuple[str, dict]]:
    """Log in as an editor and build each read task's URL as the simulated browser would."""
    account = next(a for a in plan["accounts"] if a["role"] == "editor")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    form = {"email": account["email"], "password": plan["password"], "csrf_token": token}
    assert client.post("/login", data=form).status_code == 302, "the plan's editor could not log in"
    base, journey = f"/o/{plan['slug']}", account["journey_id"]
    html = client.get(f"{base}/journeys/{journey}").get_data(as_text=True)
    since = re.search(r'id="board"[^>]*data-since="(\d+)"', html).group(1)
    inbox_since = re.search(r"inbox/unread\?since=(\d+)", html).group(1)
    hx = {"HX-Request": "true"}
    comments = client.get(f"{base}/journeys/{journey}/comments", headers=hx).get_data(as_text=True)
    comments_since = re.search(r"comments\?since=([^\"&]+)", comments).group(1)
    linked_journey, link = plan["links"][0]
    return {
        "board_poll": (f"{base}/journeys/{journey}/board?since={since}", hx),
        "comments_poll": (f"{base}/journeys/{journey}/comments?since={comments_since}", hx),
        "inbox_poll": (f"{base}/inbox/unread?since={inbox_since}", hx),
        "presence": (f"{base}/journeys/{journey}/presence", hx),
        "eventlog_status": (f"{base}/eventlogs/{plan['log_id']}/status", hx),
        "measurement_status": (f"{base}/journeys/{linked_journey}/data/links/{link}/status", hx),
        "dashboard_filtered": (f"{base}/dashboard?kind=employee", hx),
        "journey_page": (f"{base}/journeys/{journey}", {}),
        "journeys_list": (f"{base}/journeys", {}),
        "data_vs_story": (f"{base}/journeys/{linked_journey}/data", {}),
        "dashboard": (f"{base}/dashboard", {}),
        "goals_list": (f"{base}/goals", {}),
        "goal_page": (f"{base}/goals/{plan['goals'][0]}", {}),
    }


if __name__ == "__main__":
    raise SystemExit(main())
