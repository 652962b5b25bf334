//! The issuers an imported federated credential may trust, recognised by their URL and the shape
//! of their subjects, so that the written file says who signs the tokens. Sources: GitHub
//! ("About security hardening with OpenID Connect": issuer, `repo:ORG/REPO:…` subjects), Azure
//! DevOps ("workload identity federation" service connections: `vstoken.dev.azure.com/{org id}`,
//! `sc://ORG/PROJECT/CONNECTION`, and the Entra issuer of newer connections), GitLab ("OpenID
//! Connect (OIDC) Authentication Using ID Tokens": `project_path:…`), HCP Terraform ("Dynamic
//! Credentials": `organization:ORG:project:P:workspace:W:run_phase:PHASE`), AKS (the
//! `oic.prod-aks.azure.com` issuer), Kubernetes (`system:serviceaccount:NS:NAME`).

/// Who issues the tokens a credential trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    GitHubActions,
    AzureDevOps,
    /// gitlab.com, or (`self_managed`) a GitLab instance of its own.
    GitLab {
        self_managed: bool,
    },
    /// HCP Terraform (app.terraform.io), or (`enterprise`) a Terraform Enterprise instance.
    TerraformCloud {
        enterprise: bool,
    },
    /// A Kubernetes cluster's service account issuer; `aks` when it is an AKS OIDC issuer.
    Kubernetes {
        aks: bool,
    },
    Other,
}

pub const GITHUB_ACTIONS: &str = "https://token.actions.githubusercontent.com";
pub const AZURE_DEVOPS_PREFIX: &str = "https://vstoken.dev.azure.com/";
pub const GITLAB: &str = "https://gitlab.com";
pub const TERRAFORM_CLOUD: &str = "https://app.terraform.io";

/// The subject of a Kubernetes service account token: `(namespace, name)`.
pub fn service_account_of(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// Which issuer `issuer` is, helped by the shape of `subject` for self-hosted ones.
pub fn classify(issuer: &str, subject: &str) -> IssuerKind {
    let bare = issuer.trim_end_matches('/');
    let host = host_of(issuer);
    if bare == GITHUB_ACTIONS {
        IssuerKind::GitHubActions
    } else if issuer.starts_with(AZURE_DEVOPS_PREFIX)
        || (host == "login.microsoftonline.com" && subject.starts_with("/eid1/"))
    {
        IssuerKind::AzureDevOps
    } else if bare == GITLAB {
        IssuerKind::GitLab {
            self_managed: false,
        }
    } else if bare == TERRAFORM_CLOUD {
        IssuerKind::TerraformCloud { enterprise: false }
    } else if service_account_of(subject).is_some() {
        IssuerKind::Kubernetes {
            aks: host.ends_with(".oic.prod-aks.azure.com"),
        }
    } else if subject.starts_with("project_path:") {
        IssuerKind::GitLab { self_managed: true }
    } else if subject.starts_with("organization:") && subject.contains(":workspace:") {
        IssuerKind::TerraformCloud { enterprise: true }
    } else {
        IssuerKind::Other
    }
}

/// One line that says who issues the tokens and which ones are trusted, for a comment above a
/// federation; `None` for an issuer wiform does not know.
pub fn describe(issuer: &str, subject: &str) -> Option<String> {
    let host = host_of(issuer);
    let text = match classify(issuer, subject) {
        IssuerKind::GitHubActions => format!("GitHub Actions: {}", github_subject(subject)),
        IssuerKind::AzureDevOps => match subject.strip_prefix("sc://").map(|s| s.split('/')) {
            Some(mut parts) => match (parts.next(), parts.next(), parts.next()) {
                (Some(org), Some(project), Some(connection)) => {
                    format!("Azure DevOps: service connection {connection} of {org}/{project}")
                }
                _ => "Azure DevOps: a service connection".to_string(),
            },
            None if subject.starts_with("/eid1/") => {
                "Azure DevOps: a service connection (Entra issuer)".to_string()
            }
            None => "Azure DevOps: a service connection".to_string(),
        },
        IssuerKind::GitLab { self_managed } => {
            let at = if self_managed {
                format!("GitLab at {host}")
            } else {
                "GitLab.com".to_string()
            };
            match gitlab_subject(subject) {
                Some(what) => format!("{at}: {what}"),
                None => format!("{at} CI/CD"),
            }
        }
        IssuerKind::TerraformCloud { enterprise } => {
            let at = if enterprise {
                format!("Terraform Enterprise at {host}")
            } else {
                "HCP Terraform".to_string()
            };
            match terraform_subject(subject) {
                Some(what) => format!("{at}: {what}"),
                None => format!("{at} runs"),
            }
        }
        IssuerKind::Kubernetes { aks } => {
            let (namespace, name) = service_account_of(subject)?;
            let cluster = if aks {
                "An AKS cluster's OIDC issuer"
            } else {
                "A Kubernetes cluster's issuer"
            };
            format!("{cluster}: service account {namespace}/{name}")
        }
        IssuerKind::Other => return None,
    };
    Some(text)
}

/// The host of an https URL (empty when there is none).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

/// `repo:ORG/REPO:ref:refs/heads/main` and the other subjects GitHub documents.
fn github_subject(subject: &str) -> String {
    let Some(rest) = subject.strip_prefix("repo:") else {
        return format!("subject {subject}");
    };
    let Some((repo, what)) = rest.split_once(':') else {
        return format!("repository {rest}");
    };
    if let Some(branch) = what.strip_prefix("ref:refs/heads/") {
        format!("branch {branch} of {repo}")
    } else if let Some(tag) = what.strip_prefix("ref:refs/tags/") {
        format!("tag {tag} of {repo}")
    } else if let Some(environment) = what.strip_prefix("environment:") {
        format!("environment {environment} of {repo}")
    } else if what == "pull_request" {
        format!("pull requests of {repo}")
    } else {
        format!("{what} of {repo}")
    }
}

/// `project_path:GROUP/PROJECT:ref_type:branch:ref:main`.
fn gitlab_subject(subject: &str) -> Option<String> {
    let rest = subject.strip_prefix("project_path:")?;
    let (project, what) = rest.split_once(':').unwrap_or((rest, ""));
    Some(match what.strip_prefix("ref_type:") {
        Some(r) => match r.split_once(":ref:") {
            Some((kind, name)) => format!("{kind} {name} of {project}"),
            None => format!("{r} of {project}"),
        },
        None => format!("project {project}"),
    })
}

/// `organization:ORG:project:P:workspace:W:run_phase:PHASE`.
fn terraform_subject(subject: &str) -> Option<String> {
    let parts: Vec<&str> = subject.split(':').collect();
    let value = |key: &str| {
        parts
            .iter()
            .position(|p| *p == key)
            .and_then(|i| parts.get(i + 1))
            .copied()
    };
    let organization = value("organization")?;
    let workspace = value("workspace")?;
    Some(match value("run_phase") {
        Some(phase) => format!("workspace {workspace} of {organization}, {phase} runs"),
        None => format!("workspace {workspace} of {organization}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_issuers_are_recognised() {
        let cases = [
            (
                GITHUB_ACTIONS,
                "repo:contoso/orders:ref:refs/heads/main",
                IssuerKind::GitHubActions,
                "GitHub Actions: branch main of contoso/orders",
            ),
            (
                "https://token.actions.githubusercontent.com/",
                "repo:contoso/orders:environment:production",
                IssuerKind::GitHubActions,
                "GitHub Actions: environment production of contoso/orders",
            ),
            (
                "https://vstoken.dev.azure.com/dddddddd-0000-4000-8000-000000000001",
                "sc://contoso/platform/deploy",
                IssuerKind::AzureDevOps,
                "Azure DevOps: service connection deploy of contoso/platform",
            ),
            (
                "https://login.microsoftonline.com/aaaaaaaa-0000-4000-8000-000000000001/v2.0",
                "/eid1/c/pub/t/x/a/y/sc/z",
                IssuerKind::AzureDevOps,
                "Azure DevOps: a service connection (Entra issuer)",
            ),
            (
                "https://gitlab.com",
                "project_path:contoso/orders:ref_type:branch:ref:main",
                IssuerKind::GitLab {
                    self_managed: false,
                },
                "GitLab.com: branch main of contoso/orders",
            ),
            (
                "https://git.contoso.com",
                "project_path:platform/infra:ref_type:tag:ref:v1",
                IssuerKind::GitLab { self_managed: true },
                "GitLab at git.contoso.com: tag v1 of platform/infra",
            ),
            (
                "https://app.terraform.io",
                "organization:contoso:project:infra:workspace:prod:run_phase:apply",
                IssuerKind::TerraformCloud { enterprise: false },
                "HCP Terraform: workspace prod of contoso, apply runs",
            ),
            (
                "https://tfe.contoso.com",
                "organization:contoso:project:p:workspace:w:run_phase:plan",
                IssuerKind::TerraformCloud { enterprise: true },
                "Terraform Enterprise at tfe.contoso.com: workspace w of contoso, plan runs",
            ),
            (
                "https://westeurope.oic.prod-aks.azure.com/t/c/",
                "system:serviceaccount:batch:report",
                IssuerKind::Kubernetes { aks: true },
                "An AKS cluster's OIDC issuer: service account batch/report",
            ),
            (
                "https://oidc.example.com/onprem",
                "system:serviceaccount:batch:report",
                IssuerKind::Kubernetes { aks: false },
                "A Kubernetes cluster's issuer: service account batch/report",
            ),
        ];
        for (issuer, subject, kind, text) in cases {
            assert_eq!(classify(issuer, subject), kind, "{issuer}");
            assert_eq!(describe(issuer, subject).as_deref(), Some(text), "{issuer}");
        }
        assert_eq!(classify("https://idp.example.com", "x"), IssuerKind::Other);
        assert_eq!(describe("https://idp.example.com", "x"), None);
        // Odd subjects of a known issuer still get a line, never a panic.
        assert_eq!(
            describe(GITHUB_ACTIONS, "x").as_deref(),
            Some("GitHub Actions: subject x")
        );
        assert_eq!(
            describe(AZURE_DEVOPS_PREFIX, "sc://only").as_deref(),
            Some("Azure DevOps: a service connection")
        );
    }

    #[test]
    fn service_account_subjects_name_a_namespace_and_an_account() {
        assert_eq!(
            service_account_of("system:serviceaccount:orders:api"),
            Some(("orders", "api"))
        );
        assert_eq!(service_account_of("system:serviceaccount:orders:"), None);
        assert_eq!(service_account_of("system:serviceaccount:a:b:c"), None);
        assert_eq!(service_account_of("repo:x"), None);
    }
}
