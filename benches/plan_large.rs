//! `cargo bench --bench plan_large`: `wiform plan` of a large config, everything already
//! applied, against the sandbox with 20 ms of latency per answer (the plan issue's benchmark;
//! the figures and what they mean are in docs/performance.md).
//!
//! The config (benches/support/large.rs): 200 managed identities in 4 resource groups, 2 AKS
//! clusters, 400 service accounts in 20 namespaces (400 federated credentials), 400 role grants
//! over 50 scopes. The benchmark starts a sandbox in this process with its state in a temporary
//! directory and records its address in `{dir}/endpoint`, as `wiform sandbox serve` does, so
//! that the release binary, run as a child with `--sandbox --sandbox-dir {dir}`, talks to it.
//! It applies the config once (reported: the apply benchmark), then runs the plan `--runs`
//! times (3 by default) and reports, per run, the wall time of the child process, its peak RSS
//! (wait4's `ru_maxrss`) and the requests the sandbox answered, by API.
//!
//! Options: `--runs N`, `--latency-ms MS` (default 20), `--identities N` (default 200),
//! `--msi-throttle` (the plans, not the apply, meet the Managed Identity provider's own rate
//! limits: its buckets are per subscription and outlive a run, so runs after the first start
//! with what the previous one left).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wiform_sandbox::log::Entry;
use wiform_sandbox::{Faults, Options, Running};

#[path = "support/large.rs"]
mod large;

/// The targets for the plan.
const MAX_REQUESTS: usize = 260;
const MAX_WALL: Duration = Duration::from_secs(2);
const MAX_RSS_KB: u64 = 100 * 1024;

const APIS: [&str; 4] = ["arm", "graph", "kube", "entra"];

struct Run {
    wall: Duration,
    /// Peak resident set of the child, KiB.
    max_rss_kb: u64,
    code: i32,
    stdout: String,
    stderr: String,
    requests: Vec<Entry>,
}

impl Run {
    fn by_api(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> = APIS.iter().map(|a| (*a, 0)).collect();
        for r in &self.requests {
            *counts.entry(r.api).or_default() += 1;
        }
        counts
    }

    fn by_operation(&self) -> BTreeMap<String, usize> {
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
fn kube_kind(path: &str) -> String {
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
fn run_wiform(running: &Running, args: &[&str]) -> Run {
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

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn machine() -> String {
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

fn print_breakdown(title: &str, run: &Run) {
    println!("{title}");
    for (what, n) in run.by_operation() {
        println!("  {n:>5}  {what}");
    }
}

fn fail(what: &str, run: &Run) -> ! {
    eprintln!(
        "{what} failed (exit {}):\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    );
    std::process::exit(1);
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a number, not {v:?}"))
        })
}

fn main() {
    // `cargo bench` passes `--bench` (and any filter); only our options are read.
    let args: Vec<String> = std::env::args().collect();
    let runs = arg(&args, "--runs", 3).max(1) as usize;
    let latency_ms = arg(&args, "--latency-ms", 20);
    let identities = arg(&args, "--identities", 200) as usize;
    let msi_throttle = args.iter().any(|a| a == "--msi-throttle");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let running = runtime
        .block_on(wiform_sandbox::start(Options {
            state_dir: Some(dir.path().to_path_buf()),
            port: 0,
            ..Options::default()
        }))
        .expect("the sandbox starts");
    // What `wiform sandbox serve` writes, so that `--sandbox-dir` connects to this sandbox.
    std::fs::write(dir.path().join("endpoint"), running.base_url()).unwrap();
    let config = dir.path().join("large.toml");
    std::fs::write(&config, large::large_config(identities, 4)).unwrap();
    let sandbox_dir = dir.path().to_str().unwrap();
    let config = config.to_str().unwrap();
    let common = [
        "--color",
        "never",
        "--sandbox",
        "--sandbox-dir",
        sandbox_dir,
        "-f",
        config,
    ];

    println!(
        "wiform plan_large: {identities} identities, 2 AKS clusters, {} service accounts in 20 namespaces, {} role grants over 50 scopes",
        2 * identities,
        2 * identities
    );
    println!("machine: {}", machine());
    println!(
        "sandbox: {} (state {}), latency {latency_ms} ms per answer\n",
        running.base_url(),
        Path::new(sandbox_dir).display()
    );

    running.app.set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });

    // Everything applied first: the apply is measured too (the apply benchmark's case (a)).
    let apply = run_wiform(
        &running,
        &[&["apply", "--auto-approve"][..], &common].concat(),
    );
    if apply.code != 0 {
        fail("wiform apply", &apply);
    }
    let applied = apply
        .stderr
        .lines()
        .chain(apply.stdout.lines())
        .find(|l| l.starts_with("Apply complete!"))
        .unwrap_or("(no summary)")
        .to_string();

    if msi_throttle {
        println!("plans run with the Managed Identity provider's rate limits (msi_throttle)\n");
        running.app.set_faults(Faults {
            latency_ms,
            msi_throttle,
            ..Faults::default()
        });
    }
    let mut plans = Vec::new();
    for _ in 0..runs {
        let plan = run_wiform(&running, &[&["plan"][..], &common].concat());
        if plan.code != 0 || !plan.stdout.contains("No changes") {
            fail("wiform plan (expected exit 0 and \"No changes\")", &plan);
        }
        plans.push(plan);
    }

    println!("apply, from empty: {applied}");
    println!(
        "  wall {}, peak RSS {}, {} requests ({})\n",
        ms(apply.wall),
        mb(apply.max_rss_kb),
        apply.requests.len(),
        apply
            .by_api()
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!("plan, everything applied ({runs} runs):");
    println!(
        "  {:<5} {:>9} {:>10} {:>9} {:>6} {:>6} {:>6} {:>6}",
        "run", "wall", "peak RSS", "requests", "arm", "graph", "kube", "entra"
    );
    for (i, p) in plans.iter().enumerate() {
        let by_api = p.by_api();
        println!(
            "  {:<5} {:>9} {:>10} {:>9} {:>6} {:>6} {:>6} {:>6}",
            i + 1,
            ms(p.wall),
            mb(p.max_rss_kb),
            p.requests.len(),
            by_api["arm"],
            by_api["graph"],
            by_api["kube"],
            by_api["entra"]
        );
    }
    let walls: Vec<Duration> = plans.iter().map(|p| p.wall).collect();
    let rss: Vec<u64> = plans.iter().map(|p| p.max_rss_kb).collect();
    let counts: Vec<usize> = plans.iter().map(|p| p.requests.len()).collect();
    let (wall_min, wall_med) = (*walls.iter().min().unwrap(), median(&walls));
    let (rss_min, rss_med) = (*rss.iter().min().unwrap(), median(&rss));
    let requests = *counts.iter().max().unwrap();
    println!();
    println!(
        "  {:<10} {:>10} {:>10} {:>10}  target",
        "", "min", "median", ""
    );
    println!(
        "  {:<10} {:>10} {:>10} {:>10}  <= {MAX_REQUESTS}",
        "requests",
        counts.iter().min().unwrap(),
        median(&counts),
        verdict(requests <= MAX_REQUESTS)
    );
    println!(
        "  {:<10} {:>10} {:>10} {:>10}  < {}",
        "wall",
        ms(wall_min),
        ms(wall_med),
        verdict(wall_med < MAX_WALL),
        ms(MAX_WALL)
    );
    println!(
        "  {:<10} {:>10} {:>10} {:>10}  < {}",
        "peak RSS",
        mb(rss_min),
        mb(rss_med),
        verdict(rss_med < MAX_RSS_KB),
        mb(MAX_RSS_KB)
    );
    println!();
    print_breakdown("plan requests by operation (run 1):", &plans[0]);
    println!();
    print_breakdown("apply requests by operation:", &apply);

    runtime.block_on(running.stop());
}
