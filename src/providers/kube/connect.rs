//! Connecting to a cluster: one client per cluster, from a kubeconfig context (the cluster's
//! `kube_context`, optional `kubeconfig` file, else `$KUBECONFIG` / `~/.kube/config`) or from
//! kubeconfig YAML text (what AKS `listClusterUserCredential` and the sandbox return, once
//! base64-decoded).

use std::path::{Path, PathBuf};

use ::kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::error::{KubeError, KubeErrorKind};
use crate::config::model::Cluster;

/// Where a cluster's kubeconfig comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KubeconfigSource {
    /// A kubeconfig file (`path`), or `$KUBECONFIG` / `~/.kube/config` when `None`; the named
    /// context, or the file's current-context when `None`.
    File {
        path: Option<PathBuf>,
        context: Option<String>,
    },
    /// Kubeconfig YAML text; the named context, or its current-context when `None`.
    Yaml {
        text: String,
        context: Option<String>,
    },
}

// Kubeconfig text holds credentials (AKS's user kubeconfig carries a token): Debug shows only
// its size.
impl std::fmt::Debug for KubeconfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KubeconfigSource::File { path, context } => f
                .debug_struct("File")
                .field("path", path)
                .field("context", context)
                .finish(),
            KubeconfigSource::Yaml { text, context } => f
                .debug_struct("Yaml")
                .field("text", &format_args!("<redacted, {} bytes>", text.len()))
                .field("context", context)
                .finish(),
        }
    }
}

impl KubeconfigSource {
    /// The source a configured cluster names: its `kube_context` in its `kubeconfig` (`~/`
    /// expanded, a relative path taken from `base_dir`, the directory of identity.toml). `None`
    /// for an AKS cluster without `kube_context`: reach it with the AKS user credential
    /// ([`KubeconfigSource::Yaml`]).
    pub fn for_cluster(cluster: &Cluster, base_dir: &Path) -> Option<Self> {
        let context = cluster.kube_context.as_ref().map(|c| c.value.clone());
        let path = cluster
            .kubeconfig
            .as_ref()
            .map(|p| resolve_path(&p.value, base_dir));
        if context.is_none() && path.is_none() && cluster.resource_group.is_some() {
            return None;
        }
        Some(KubeconfigSource::File { path, context })
    }

    fn context(&self) -> Option<&str> {
        match self {
            KubeconfigSource::File { context, .. } | KubeconfigSource::Yaml { context, .. } => {
                context.as_deref()
            }
        }
    }
}

/// `~/x` → `$HOME/x`; a relative path is taken from `base_dir`.
pub fn resolve_path(path: &str, base_dir: &Path) -> PathBuf {
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest),
            None => PathBuf::from(path),
        },
        None => PathBuf::from(path),
    };
    if expanded.is_relative() {
        base_dir.join(expanded)
    } else {
        expanded
    }
}

/// A loaded kubeconfig, ready for a client: the kube-rs config, the server URL and a label for
/// the credentials (for messages).
#[derive(Clone)]
pub struct LoadedConfig {
    pub config: ::kube::Config,
    pub server: String,
    /// `context "prod-admin"`.
    pub credentials: String,
}

impl std::fmt::Debug for LoadedConfig {
    // The kube config holds credentials: show only where it points.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConfig")
            .field("server", &self.server)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Loads the kubeconfig of `cluster` (its key in identity.toml, used in errors) from `source`.
pub async fn load_config(
    cluster: &str,
    source: &KubeconfigSource,
) -> Result<LoadedConfig, KubeError> {
    let (kubeconfig, origin) = match source {
        KubeconfigSource::File {
            path: Some(path), ..
        } => {
            let loaded = Kubeconfig::read_from(path)
                .map_err(|e| file_error(cluster, &path.display().to_string(), e))?;
            (loaded, path.display().to_string())
        }
        KubeconfigSource::File { path: None, .. } => {
            let origin = default_origin();
            let loaded = Kubeconfig::read().map_err(|e| file_error(cluster, &origin, e))?;
            (loaded, origin)
        }
        KubeconfigSource::Yaml { text, .. } => {
            let origin = "the kubeconfig text".to_string();
            let loaded =
                Kubeconfig::from_yaml(text).map_err(|e| file_error(cluster, &origin, e))?;
            (loaded, origin)
        }
    };
    let available: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context = match source.context() {
        Some(context) => {
            if !available.iter().any(|c| c == context) {
                return Err(KubeErrorKind::UnknownContext {
                    cluster: cluster.into(),
                    context: context.into(),
                    suggestion: crate::config::suggest::closest(
                        context,
                        available.iter().map(String::as_str),
                    )
                    .map(str::to_string),
                    origin,
                    available,
                }
                .into());
            }
            context.to_string()
        }
        None => match kubeconfig.current_context.clone().filter(|c| !c.is_empty()) {
            Some(current) if available.contains(&current) => current,
            Some(current) => {
                return Err(KubeErrorKind::UnknownContext {
                    cluster: cluster.into(),
                    context: current,
                    suggestion: None,
                    origin,
                    available,
                }
                .into());
            }
            None => {
                return Err(KubeErrorKind::NoCurrentContext {
                    cluster: cluster.into(),
                    origin,
                    available,
                }
                .into());
            }
        },
    };
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| -> KubeError {
            KubeErrorKind::ContextUnusable {
                cluster: cluster.into(),
                context: context.clone(),
                reason: describe(&e),
            }
            .into()
        })?;
    Ok(LoadedConfig {
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
        config,
        credentials: format!("context \"{context}\""),
    })
}

fn default_origin() -> String {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(value) => format!("$KUBECONFIG ({})", value.to_string_lossy()),
        None => "~/.kube/config".to_string(),
    }
}

fn file_error(cluster: &str, origin: &str, error: KubeconfigError) -> KubeError {
    match error {
        KubeconfigError::ReadConfig(source, path) => {
            if source.kind() == std::io::ErrorKind::NotFound {
                KubeErrorKind::NoKubeconfig {
                    cluster: cluster.into(),
                    detail: format!("{} does not exist", path.display()),
                }
                .into()
            } else {
                KubeErrorKind::KubeconfigUnreadable {
                    cluster: cluster.into(),
                    path,
                    source,
                }
                .into()
            }
        }
        KubeconfigError::FindPath => KubeErrorKind::NoKubeconfig {
            cluster: cluster.into(),
            detail: "$KUBECONFIG is not set and there is no home directory".into(),
        }
        .into(),
        other => KubeErrorKind::KubeconfigInvalid {
            cluster: cluster.into(),
            origin: origin.into(),
            reason: describe(&other),
        }
        .into(),
    }
}

/// A kubeconfig error in words, never quoting the file (it may hold tokens): YAML errors give
/// their position only.
fn describe(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::Parse(e) => match e.location() {
            Some(at) => format!(
                "not a valid kubeconfig (YAML error at line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "not a valid kubeconfig (YAML error)".into(),
        },
        KubeconfigError::LoadContext(name) => format!("context \"{name}\" is missing"),
        KubeconfigError::LoadClusterOfContext(name) => {
            format!("its cluster \"{name}\" is not in the kubeconfig")
        }
        KubeconfigError::MissingClusterUrl => "its cluster has no server URL".into(),
        KubeconfigError::ParseClusterUrl(_) => "its cluster's server URL is not a URL".into(),
        KubeconfigError::LoadCertificateAuthority(e) => {
            format!("its certificate authority cannot be loaded ({e})")
        }
        KubeconfigError::LoadClientCertificate(_) => {
            "its client certificate cannot be loaded".into()
        }
        KubeconfigError::LoadClientKey(_) => "its client key cannot be loaded".into(),
        KubeconfigError::ParseCertificates(_) => "its certificates are not valid PEM".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONTEXTS: &str = "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443/base
users:
- name: u
  user:
    token: secret-token-value
contexts:
- name: admin
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: u}
current-context: admin
";

    fn yaml(text: &str, context: Option<&str>) -> KubeconfigSource {
        KubeconfigSource::Yaml {
            text: text.into(),
            context: context.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn yaml_text_loads_the_named_or_current_context() {
        let loaded = load_config("prod", &yaml(TWO_CONTEXTS, None))
            .await
            .unwrap();
        assert_eq!(loaded.server, "https://127.0.0.1:6443/base");
        assert_eq!(loaded.credentials, "context \"admin\"");
        let loaded = load_config("prod", &yaml(TWO_CONTEXTS, Some("other")))
            .await
            .unwrap();
        assert_eq!(loaded.credentials, "context \"other\"");
        assert!(!format!("{loaded:?}").contains("secret-token-value"));
    }

    #[tokio::test]
    async fn unknown_context_lists_the_real_ones() {
        let e = load_config("prod", &yaml(TWO_CONTEXTS, Some("admn")))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster \"prod\": there is no context \"admn\" in the kubeconfig text; the contexts are: admin, other"
        );
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(help.contains("did you mean \"admin\"?"), "{help}");
    }

    #[tokio::test]
    async fn broken_yaml_is_reported_without_its_content() {
        let text = "users:\n- name: u\n  user:\n    token: [secret-token-value\n";
        let e = load_config("prod", &yaml(text, None)).await.unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("secret-token-value"), "{shown}");
        assert!(shown.contains("not a valid kubeconfig"), "{shown}");
    }

    #[tokio::test]
    async fn missing_current_context_or_file() {
        let text = TWO_CONTEXTS.replace("current-context: admin\n", "");
        let e = load_config("prod", &yaml(&text, None)).await.unwrap_err();
        assert!(
            matches!(e.kind(), KubeErrorKind::NoCurrentContext { .. }),
            "{e}"
        );
        let e = load_config(
            "prod",
            &KubeconfigSource::File {
                path: Some("/nonexistent/kubeconfig".into()),
                context: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster \"prod\": no kubeconfig found (/nonexistent/kubeconfig does not exist)"
        );
    }

    #[tokio::test]
    async fn a_context_whose_cluster_is_missing_is_unusable() {
        let text = TWO_CONTEXTS.replace(
            "{cluster: c, user: u}\n- name: other",
            "{cluster: gone, user: u}\n- name: other",
        );
        let e = load_config("prod", &yaml(&text, Some("admin")))
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), KubeErrorKind::ContextUnusable { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("\"gone\""), "{e}");
    }

    #[test]
    fn paths_expand_home_and_follow_the_config_file() {
        let base = Path::new("/etc/wiform");
        assert_eq!(resolve_path("/abs/k", base), PathBuf::from("/abs/k"));
        assert_eq!(
            resolve_path("k.yaml", base),
            PathBuf::from("/etc/wiform/k.yaml")
        );
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                resolve_path("~/.kube/x", base),
                Path::new(&home).join(".kube/x")
            );
        }
    }

    #[test]
    fn debug_never_shows_kubeconfig_text() {
        let source = KubeconfigSource::Yaml {
            text: TWO_CONTEXTS.into(),
            context: None,
        };
        let shown = format!("{source:?}");
        assert!(!shown.contains("secret-token-value"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
