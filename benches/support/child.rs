//! Running the wiform binary as a child against an in-process sandbox, and reporting on it:
//! shared by the benchmarks (each includes this file with `#[path]`).

#![allow(dead_code)] // each bench uses part of it

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wiform_sandbox::Running;
use wiform_sandbox::log::Entry;

pub const APIS: [&str; 4] = ["arm", "graph", "kube", "entra"];

pub struct Run {
    pub wall: Duration,
    /// Peak resident set of the child, KiB.
    pub max_rss_kb: u64,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub requests: Vec<Entry>,
}

impl Run {
    pub fn by_api(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> = APIS.iter().map(|a| (*a, 0)).collect();
        for r in &self.requests {
            *counts.entry(r.api).or_default() += 1;
        }
        counts
    }

    pub fn by_operation(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.requests {
            let what = match r.api {
                // `GET other` says little for Kubernetes: name the resource listed.
                "kube" => format!("kube {} {}", r.method, kube_kind(&r.path)),
                api => format!("{api} {}", r.operation),
            };
            *counts.entry(what).or_default() += 1;
        }
        counts
    }
}

/// `namespaces`, `serviceaccounts (all namespaces)`, `serviceaccounts (one namespace)`, …
pub fn kube_kind(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if i + 2 < segments.len() => format!("{} (one namespace)", segments[i + 2]),
        Some(i) if i + 1 < segments.len() => "namespace".into(),
        Some(_) => "namespaces".into(),
        None => match segments.last() {
            Some(&"serviceaccounts") => "serviceaccounts (all namespaces)".into(),
            Some(last) => (*last).to_string(),
            None => "?".into(),
        },
    }
}

/// Runs the wiform binary to completion: wall time from spawn to exit, and the child's own
/// rusage (wait4, so the peak RSS is this child's, not the largest of all children so far).
// The workspace denies unsafe code; wait4 through libc is the one exception (see SAFETY below).
#[allow(unsafe_code)]
pub fn run_wiform(running: &Running, args: &[&str]) -> Run {
    running.app.log.clear();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wiform"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wiform binary starts");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it in. The child is ours and not waited for
    // elsewhere (std's `Child` is never waited on, and dropping it does not wait).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = started.elapsed();
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    drop(child);
    Run {
        wall,
        // Linux reports ru_maxrss in KiB.
        max_rss_kb: usage.ru_maxrss as u64,
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        requests: running.app.log.entries(),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

pub fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort();
    v[v.len() / 2]
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

pub fn print_breakdown(title: &str, run: &Run) {
    println!("{title}");
    for (what, n) in run.by_operation() {
        println!("  {n:>5}  {what}");
    }
}

pub fn fail(what: &str, run: &Run) -> ! {
    eprintln!(
        "{what} failed (exit {}):\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    );
    std::process::exit(1);
}

pub fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a number, not {v:?}"))
        })
}
