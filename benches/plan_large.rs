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
//! (wait4's `ru_maxrss`) and the requests the sandbox answered, by API. Last, `wiform drift` of
//! the same state (the drift issue's benchmark: the same budget as plan).
//!
//! Options: `--runs N`, `--latency-ms MS` (default 20), `--identities N` (default 200),
//! `--msi-throttle` (the plans, not the apply, meet the Managed Identity provider's own rate
//! limits: its buckets are per subscription and outlive a run, so runs after the first start
//! with what the previous one left).

use std::path::Path;
use std::time::Duration;

use wiform_sandbox::{Faults, Options};

#[path = "support/large.rs"]
mod large;

#[path = "support/child.rs"]
mod child;

use child::{arg, fail, machine, mb, median, ms, print_breakdown, run_wiform, verdict};

/// The targets for the plan.
const MAX_REQUESTS: usize = 260;
const MAX_WALL: Duration = Duration::from_secs(2);
const MAX_RSS_KB: u64 = 100 * 1024;

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

    // Drift of the same state: the same observation as plan, so the same request budget.
    let drift = run_wiform(&running, &[&["drift"][..], &common].concat());
    if drift.code != 0 || !drift.stdout.contains("In sync") {
        fail("wiform drift (expected exit 0 and \"In sync\")", &drift);
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
    println!(
        "\ndrift, everything applied: wall {}, peak RSS {}, {} requests (target <= {MAX_REQUESTS}): {}",
        ms(drift.wall),
        mb(drift.max_rss_kb),
        drift.requests.len(),
        verdict(drift.requests.len() <= MAX_REQUESTS)
    );
    println!();
    print_breakdown("plan requests by operation (run 1):", &plans[0]);
    println!();
    print_breakdown("apply requests by operation:", &apply);

    runtime.block_on(running.stop());
}
