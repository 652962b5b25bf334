//! `cargo bench --bench apply_limits`: `wiform apply` of the large config from empty with every
//! documented request limit on (the apply issue's benchmark, case (b); docs/performance.md).
//!
//! Each run starts a fresh sandbox in this process (state in a temporary directory, address in
//! `{dir}/endpoint` as `wiform sandbox serve` writes it) with 20 ms of latency per answer, ARM's
//! token buckets per subscription (reads 250 / 25 per s, writes and deletes 200 / 10 per s) and
//! the Managed Identity provider's own limits (per subscription: create/update 2, get 10, list
//! 5, delete 2 per second; per identity: 0.25 writes per second), all multiplied by `--scale`
//! (default 10, so that a run takes seconds rather than minutes). It runs the release binary
//! `wiform apply --auto-approve` from empty, then `wiform plan` (limits still on) to check that
//! nothing is left to do.
//!
//! The floor: every limit is a token bucket, so `n` requests through a bucket of burst `b` and
//! refill `r` take at least `(n − b) / r` seconds. The bench counts, from the sandbox's request
//! log, the requests each bucket let through (answers other than 429: the work that had to be
//! done) and reports the largest of these times: no client could finish sooner. It reports the
//! apply's wall time against it, and the share of requests answered 429.
//!
//! Options: `--runs N` (default 1), `--scale S` (default 10), `--latency-ms MS` (default 20),
//! `--identities N` (default 200), `--log FILE` (the sandbox's log of the apply, JSON lines).

use std::collections::BTreeMap;
use std::time::Duration;

use wiform_sandbox::log::Entry;
use wiform_sandbox::throttle::{Class, MSI_BURST_SECONDS, MSI_RESOURCE_WRITE_RATE, msi_rate};
use wiform_sandbox::{Faults, Options};

#[path = "support/large.rs"]
mod large;

#[path = "support/child.rs"]
mod child;

use child::{Run, arg, fail, machine, mb, ms, print_breakdown, run_wiform};

/// The targets: within 1.15× of the floor, under 5% of requests answered 429.
const MAX_RATIO: f64 = 1.15;
const MAX_THROTTLED_SHARE: f64 = 0.05;

/// One token bucket and the requests that went through it.
#[derive(Debug, Clone)]
struct Bucket {
    name: String,
    burst: f64,
    per_second: f64,
    passed: usize,
}

impl Bucket {
    /// The shortest time in which `passed` requests fit through this bucket.
    fn floor(&self) -> Duration {
        Duration::from_secs_f64(((self.passed as f64 - self.burst) / self.per_second).max(0.0))
    }
}

/// After `providers/{namespace}`, ARM paths alternate type and name: an odd count of segments
/// names a collection (a list), an even one a resource.
fn msi_segments(path: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("Microsoft.ManagedIdentity"))?;
    Some(segments[at + 1..].to_vec())
}

/// The sandbox's buckets (sandbox/src/throttle.rs) at `scale`, each with the requests of `log`
/// it let through.
fn buckets(log: &[Entry], scale: f64) -> Vec<Bucket> {
    let mut by_name: BTreeMap<String, Bucket> = BTreeMap::new();
    let mut count = |name: String, burst: f64, per_second: f64| {
        by_name
            .entry(name.clone())
            .or_insert(Bucket {
                name,
                burst,
                per_second,
                passed: 0,
            })
            .passed += 1;
    };
    for entry in log.iter().filter(|e| e.api == "arm" && e.status != 429) {
        let method: reqwest::Method = entry.method.parse().unwrap_or(reqwest::Method::GET);
        let class = Class::of(&method);
        let (burst, refill) = class.arm_bucket();
        count(
            format!("ARM {class:?} per subscription"),
            burst * scale,
            refill * scale,
        );
        let Some(after) = msi_segments(&entry.path) else {
            continue;
        };
        let is_list = after.len() % 2 == 1;
        let rate = msi_rate(&method, is_list) * scale;
        count(
            format!(
                "Managed Identity {method}{} per subscription",
                if is_list { " (list)" } else { "" }
            ),
            rate * MSI_BURST_SECONDS,
            rate,
        );
        if after.len() >= 2 && !matches!(method, reqwest::Method::GET | reqwest::Method::HEAD) {
            let rate = MSI_RESOURCE_WRITE_RATE * scale;
            count(
                format!("Managed Identity writes on identity {}", after[1]),
                (rate * MSI_BURST_SECONDS).max(1.0),
                rate,
            );
        }
    }
    by_name.into_values().collect()
}

struct Measured {
    wall: Duration,
    requests: usize,
    throttled: usize,
    binding: Bucket,
    floor: Duration,
    max_rss_kb: u64,
}

fn measure(apply: &Run, scale: f64) -> Measured {
    let buckets = buckets(&apply.requests, scale);
    let binding = buckets
        .iter()
        .max_by(|a, b| a.floor().cmp(&b.floor()))
        .cloned()
        .expect("the apply made requests");
    Measured {
        wall: apply.wall,
        requests: apply.requests.len(),
        throttled: apply.requests.iter().filter(|e| e.status == 429).count(),
        floor: binding.floor(),
        binding,
        max_rss_kb: apply.max_rss_kb,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = arg(&args, "--runs", 1).max(1) as usize;
    let scale = arg(&args, "--scale", 10).max(1) as f64;
    let latency_ms = arg(&args, "--latency-ms", 20);
    let identities = arg(&args, "--identities", 200) as usize;

    println!(
        "wiform apply_limits: {identities} identities, 2 AKS clusters, {} service accounts, {} role grants, from empty",
        2 * identities,
        2 * identities
    );
    println!("machine: {}", machine());
    println!(
        "limits: ARM buckets and the Managed Identity provider's, all ×{scale}; latency {latency_ms} ms per answer\n"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let running = runtime
            .block_on(wiform_sandbox::start(Options {
                state_dir: Some(dir.path().to_path_buf()),
                port: 0,
                ..Options::default()
            }))
            .expect("the sandbox starts");
        std::fs::write(dir.path().join("endpoint"), running.base_url()).unwrap();
        let config = dir.path().join("large.toml");
        std::fs::write(&config, large::large_config(identities, 4)).unwrap();
        let common = [
            "--color",
            "never",
            "--sandbox",
            "--sandbox-dir",
            dir.path().to_str().unwrap(),
            "-f",
            config.to_str().unwrap(),
        ];
        running.app.set_faults(Faults {
            latency_ms,
            throttle: true,
            msi_throttle: true,
            throttle_scale: scale,
            ..Faults::default()
        });

        let apply = run_wiform(
            &running,
            &[&["apply", "--auto-approve"][..], &common].concat(),
        );
        if apply.code != 0 {
            fail("wiform apply", &apply);
        }
        let plan = run_wiform(&running, &[&["plan"][..], &common].concat());
        if plan.code != 0 || !plan.stdout.contains("No changes") {
            fail(
                "wiform plan after the apply (expected \"No changes\")",
                &plan,
            );
        }
        if let Some(i) = args.iter().position(|a| a == "--log") {
            // The sandbox's request log of the apply, one JSON object per line.
            let lines: Vec<String> = apply
                .requests
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            std::fs::write(&args[i + 1], lines.join("\n")).unwrap();
        }
        let m = measure(&apply, scale);
        println!(
            "run {run}: wall {}, floor {} ({}: {} requests, burst {:.0}, {:.1} per s), ratio {:.2}, {} requests, {} answered 429 ({:.1}%), peak RSS {}",
            ms(m.wall),
            ms(m.floor),
            m.binding.name,
            m.binding.passed,
            m.binding.burst,
            m.binding.per_second,
            m.wall.as_secs_f64() / m.floor.as_secs_f64().max(f64::EPSILON),
            m.requests,
            m.throttled,
            100.0 * m.throttled as f64 / m.requests as f64,
            mb(m.max_rss_kb),
        );
        // What the client learned, as its progress lines say.
        for line in apply
            .stdout
            .lines()
            .chain(apply.stderr.lines())
            .filter(|l| l.contains("throttled by the provider"))
        {
            println!("  {line}");
        }
        if run == 1 {
            println!(
                "\nthe tightest buckets (requests let through, and the time they need at least):"
            );
            let mut all = buckets(&apply.requests, scale);
            all.sort_by(|a, b| b.floor().cmp(&a.floor()).then(b.passed.cmp(&a.passed)));
            for b in all.iter().take(8) {
                println!(
                    "  {:>8}  {:>5} through burst {:>6.0} + {:>6.2}/s  {}",
                    ms(b.floor()),
                    b.passed,
                    b.burst,
                    b.per_second,
                    b.name
                );
            }
            println!();
            print_breakdown("apply requests by operation:", &apply);
            println!();
        }
        results.push(m);
        runtime.block_on(running.stop());
    }

    let worst_ratio = results
        .iter()
        .map(|m| m.wall.as_secs_f64() / m.floor.as_secs_f64().max(f64::EPSILON))
        .fold(0.0, f64::max);
    let worst_share = results
        .iter()
        .map(|m| m.throttled as f64 / m.requests as f64)
        .fold(0.0, f64::max);
    println!(
        "\nworst of {runs}: {:.2}× the floor (target ≤ {MAX_RATIO}), {:.1}% answered 429 (target < {:.0}%): {}",
        worst_ratio,
        100.0 * worst_share,
        100.0 * MAX_THROTTLED_SHARE,
        if worst_ratio <= MAX_RATIO && worst_share < MAX_THROTTLED_SHARE {
            "met"
        } else {
            "MISSED"
        }
    );
}
