#!/usr/bin/env python3
"""Fleet example: one `ipcscope analyze` task per capture under Dask distributed, tables written as
Hive-partitioned Parquet (TABLE/host=HOST/CAPTURE.parquet), then findings joined across hosts with
DuckDB: which servers restarted within the same minute.

    pip install dask distributed duckdb
    python3 examples/fleet/fleet.py --ipcscope target/debug/ipcscope --work /tmp/fleet \
        --capture web01=/cases/web01/server.pcapng --capture web02=/cases/web02/server.pcapng

Prints one JSON object (tasks, per-host finding counts, same-minute restarts) on stdout.
See docs/fleet.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

TABLES = ("connections", "findings", "pipes", "log_events")


def analyze_one(ipcscope, work, host, capture):
    """One task: analyse one capture into a private folder, then move its tables into the
    Hive layout. Runs on a Dask worker; returns what happened (never raises for a bad capture)."""
    name = os.path.splitext(os.path.basename(capture))[0]
    scratch = os.path.join(work, "runs", f"{host}-{name}")
    proc = subprocess.run(
        [ipcscope, "analyze", capture, "--out", scratch, "--format", "parquet", "--quiet"],
        capture_output=True,
        text=True,
    )
    # 0: clean; 2: an input was damaged but the tables were written from what was read.
    if proc.returncode not in (0, 2):
        return {"host": host, "capture": capture, "exit": proc.returncode, "error": proc.stderr.strip()}
    for table in TABLES:
        part = os.path.join(work, "tables", table, f"host={host}")
        os.makedirs(part, exist_ok=True)
        shutil.move(os.path.join(scratch, f"{table}.parquet"), os.path.join(part, f"{name}.parquet"))
    with open(os.path.join(scratch, "summary.json")) as f:
        summary = json.load(f)
    return {"host": host, "capture": capture, "exit": proc.returncode, "findings": sum(summary["findings"].values())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ipcscope", required=True, help="the ipcscope binary")
    ap.add_argument("--work", required=True, help="output folder (tables/, runs/)")
    ap.add_argument("--capture", action="append", required=True, metavar="HOST=PATH")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster
    import duckdb

    jobs = []
    for spec in args.capture:
        host, _, path = spec.partition("=")
        if not host or not path:
            sys.exit(f"--capture {spec}: expected HOST=PATH")
        jobs.append((host, os.path.abspath(path)))
    ipcscope = os.path.abspath(args.ipcscope)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)

    # A local cluster of worker processes, one thread each: one capture per core at a time.
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            futures = [client.submit(analyze_one, ipcscope, work, h, p, pure=False) for h, p in jobs]
            tasks = client.gather(futures)

    tables = os.path.join(work, "tables")
    db = duckdb.connect()
    # Minutes on the UTC clock, whatever the machine's zone (first_utc is a UTC timestamp column).
    db.execute("SET TimeZone = 'UTC'")
    for table in TABLES:
        glob = os.path.join(tables, table, "*", "*.parquet")
        db.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    per_host = db.execute(
        "SELECT host, kind, count(*) AS n FROM findings GROUP BY host, kind ORDER BY host, kind"
    ).fetchall()
    # Servers (host:port) that restarted, grouped by the minute of the restart: a minute in which
    # more than one host saw a restart points at a shared cause (patch window, power, a dependency).
    same_minute = db.execute(
        """
        SELECT strftime(date_trunc('minute', first_utc), '%Y-%m-%dT%H:%MZ') AS minute,
               list(DISTINCT host ORDER BY host) AS hosts,
               list(DISTINCT server ORDER BY server) AS servers
        FROM findings
        WHERE kind = 'server_restart'
        GROUP BY 1
        HAVING count(DISTINCT host) > 1
        ORDER BY 1
        """
    ).fetchall()
    print(
        json.dumps(
            {
                "tasks": tasks,
                "findings_per_host": [{"host": h, "kind": k, "count": n} for h, k, n in per_host],
                "restarts_same_minute": [{"minute": m, "hosts": h, "servers": s} for m, h, s in same_minute],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
