//! The dependency graph as Graphviz DOT or JSON.

use serde::Serialize;

use crate::address::Address;
use crate::graph::{Graph, Node, Output, Plane};

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn caption(node: &Node) -> &'static str {
    node.resource.kind().noun()
}

/// The address, with role grants on three lines and their scope shortened: a full ARM id
/// makes a node as wide as the page.
fn title(address: &Address) -> String {
    match address {
        Address::RoleGrant {
            identity,
            role,
            scope,
        } => {
            let parts: Vec<&str> = scope.split('/').collect();
            let short = if parts.len() > 5 {
                format!("…/{}", parts[parts.len() - 2..].join("/"))
            } else {
                scope.clone()
            };
            format!("role_grant.{identity}\n{role:?}\n@ {short}")
        }
        other => other.to_string(),
    }
}

/// Graphviz DOT: Azure objects as boxes, Kubernetes objects grouped per cluster, edges
/// labelled with what the dependent needs.
pub fn dot(graph: &Graph) -> String {
    let mut out = String::from(
        "digraph wiform {\n  rankdir=LR;\n  graph [fontname=\"Helvetica\", fontsize=11];\n  node [fontname=\"Helvetica\", fontsize=10, style=filled];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    let line = |id: usize, node: &Node| {
        let (shape, fill) = match node.resource.plane() {
            Plane::Arm => ("box", "#dbeafe"),
            Plane::Graph => ("box", "#ede9fe"),
            Plane::Kubernetes => ("ellipse", "#dcfce7"),
        };
        format!(
            "n{id} [label=\"{}\\n({})\", shape={shape}, fillcolor=\"{fill}\"];\n",
            escape(&title(&node.address)).replace('\n', "\\n"),
            caption(node)
        )
    };
    let mut clusters: Vec<&str> = Vec::new();
    for id in graph.node_ids() {
        let node = graph.node(id);
        match &node.cluster {
            Some(cluster) => {
                if !clusters.contains(&cluster.as_str()) {
                    clusters.push(cluster);
                }
            }
            None => out.push_str(&format!("  {}", line(id.index(), node))),
        }
    }
    for (i, cluster) in clusters.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_k8s_{i} {{\n    label=\"Kubernetes: {}\";\n    style=dashed;\n",
            escape(cluster)
        ));
        for id in graph.node_ids() {
            let node = graph.node(id);
            if node.cluster.as_deref() == Some(*cluster) {
                out.push_str(&format!("    {}", line(id.index(), node)));
            }
        }
        out.push_str("  }\n");
    }
    for (from, to, needs) in graph.edges() {
        out.push_str(&format!(
            "  n{} -> n{} [label=\"{}\"];\n",
            from.index(),
            to.index(),
            needs.as_str()
        ));
    }
    out.push_str("}\n");
    out
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    format_version: u32,
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<JsonEdge>,
    /// Addresses in the order apply would create them.
    order: Vec<String>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    kind: &'static str,
    plane: Plane,
    #[serde(flatten)]
    node: &'a Node,
    depends_on: Vec<String>,
}

#[derive(Serialize)]
struct JsonEdge {
    from: String,
    to: String,
    needs: Output,
}

/// JSON: nodes with their desired state and dependencies, edges, and a topological order.
pub fn json(graph: &Graph) -> String {
    let address = |id| graph.node(id).address.to_string();
    let doc = JsonGraph {
        format_version: 1,
        nodes: graph
            .node_ids()
            .map(|id| {
                let node = graph.node(id);
                JsonNode {
                    kind: node.resource.kind().as_str(),
                    plane: node.resource.plane(),
                    node,
                    depends_on: graph.dependencies(id).into_iter().map(address).collect(),
                }
            })
            .collect(),
        edges: graph
            .edges()
            .map(|(from, to, needs)| JsonEdge {
                from: address(from),
                to: address(to),
                needs,
            })
            .collect(),
        order: graph.topological_order().into_iter().map(address).collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
