//! The fleet example (examples/fleet/fleet.py): ipcscope under a local 2-worker Dask cluster,
//! Hive-partitioned Parquet, findings joined across hosts with DuckDB. Runs when python3 with
//! dask, distributed and duckdb is importable (`pip install dask distributed duckdb`); says
//! SKIPPED otherwise.

#![cfg_attr(not(feature = "parquet"), allow(dead_code, unused_imports))]

mod common;

use std::process::Command;

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import dask, distributed, duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: python3 with dask, distributed and duckdb not found (pip install dask distributed duckdb)");
    }
    ok
}

#[cfg(feature = "parquet")]
#[test]
fn fleet_example_joins_restarts_across_hosts() {
    if !python_ready() {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let s = common::samples();
    let work = tempfile::tempdir().unwrap();
    // Two hosts whose server restarted in the same minute (the same scenario capture stands for
    // both), one host with only idle resets.
    let restart = s.join("server_restart_refused.pcap");
    let idle = s.join("idle_reset.pcap");
    let out = Command::new("python3")
        .arg(root.join("examples/fleet/fleet.py"))
        .args(["--ipcscope", env!("CARGO_BIN_EXE_ipcscope")])
        .arg("--work")
        .arg(work.path())
        .arg(format!("--capture=app01={}", restart.display()))
        .arg(format!("--capture=app02={}", restart.display()))
        .arg(format!("--capture=db01={}", idle.display()))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "fleet.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fleet.py prints JSON");
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(tasks.iter().all(|t| t["exit"] == 0), "{tasks:?}");
    // The Hive layout: one partition per host per table.
    for table in ["connections", "findings", "pipes", "log_events"] {
        for host in ["app01", "app02", "db01"] {
            let part = work.path().join("tables").join(table).join(format!("host={host}"));
            assert!(part.is_dir(), "{}", part.display());
        }
    }
    let same = v["restarts_same_minute"].as_array().unwrap();
    assert_eq!(same.len(), 1, "{same:?}");
    assert_eq!(same[0]["hosts"], serde_json::json!(["app01", "app02"]));
    assert_eq!(same[0]["minute"], "2026-11-22T19:19Z");
    assert_eq!(same[0]["servers"], serde_json::json!(["127.10.0.1:5003"]));
    let per_host = v["findings_per_host"].as_array().unwrap();
    let idle_resets = per_host.iter().find(|r| r["host"] == "db01" && r["kind"] == "idle_reset");
    assert!(idle_resets.is_some_and(|r| r["count"].as_u64() > Some(0)), "{per_host:?}");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

#[cfg(not(feature = "parquet"))]
#[test]
fn fleet_example_joins_restarts_across_hosts() {
    eprintln!("SKIPPED: the fleet example needs Parquet tables: a build without --no-default-features");
}
