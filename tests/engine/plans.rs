use std::path::Path;

use wiform::config;
use wiform::engine::diff::{self, Input};
use wiform::engine::{apply, observe};
use wiform::graph::Graph;
use wiform::providers::azure::AzureProvider;
use wiform_sandbox::Options;

use crate::support::{Sandbox, TENANT, sandbox_with};

fn seed(sbx: &Sandbox, groups: &[&str], clusters: &[(&str, &str, bool, bool)]) {
    sbx.seed(groups, clusters);
}

struct Example {
    config: wiform::config::model::Config,
    graph: Graph,
    base_dir: std::path::PathBuf,
}

fn example(name: &str) -> Example {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .join("identity.toml");
    let checked = config::load(&path).unwrap();
    let config = checked.config.unwrap();
    let graph = Graph::build(&config);
    Example {
        config,
        graph,
        base_dir: path.parent().unwrap().to_path_buf(),
    }
}

async fn plan_of(
    provider: &AzureProvider,
    ex: &Example,
) -> (
    wiform::engine::plan::Plan,
    wiform::engine::diff::Observed,
    std::collections::BTreeMap<
        String,
        Result<wiform::providers::kube::KubeCluster, wiform::engine::diff::ClusterFailure>,
    >,
) {
    let reach = observe::reach(&ex.config, &ex.base_dir);
    let clusters = observe::connect(provider, &reach).await;
    let observed = observe::observe(provider, &clusters, &ex.config.name, &ex.graph).await;
    let plan = diff::plan(
        Input {
            stack: &ex.config.name,
            config_file: "identity.toml",
            graph: &ex.graph,
            targets: &[],
        },
        &observed,
    );
    (plan, observed, clusters)
}

#[tokio::test]
async fn quickstart_applies_and_then_plans_no_changes() {
    let sbx = sandbox_with(Options::default()).await;
    seed(
        &sbx,
        &["rg-workload-id"],
        &[("rg-workload-id", "aks-workload-id", true, false)],
    );
    let ex = example("quickstart");
    let provider = AzureProvider::new(sbx.admin.clone(), TENANT);
    let (plan, observed, clusters) = plan_of(&provider, &ex).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let summary = plan.summary();
    assert_eq!((summary.add, summary.change), (5, 1), "{plan:#?}");
    let report = apply::apply(
        &plan,
        &ex.graph,
        &observed,
        &provider,
        &clusters,
        &ex.config.name,
    )
    .await;
    assert!(report.is_success(), "{:#?}", report);
    let (again, _, _) = plan_of(&provider, &ex).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(
        !again.has_changes(),
        "{:#?}",
        again
            .changes
            .iter()
            .filter(|c| c.action.is_change())
            .collect::<Vec<_>>()
    );
}
