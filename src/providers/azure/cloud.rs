//! Where Azure is: the ARM, Microsoft Graph and Entra endpoints of a cloud, and the token scopes
//! for each. `[azure].cloud` picks them; `--sandbox` is a custom cloud whose three endpoints are
//! the emulator's address and whose CA is the emulator's, nothing else changes.

use url::Url;

use crate::config::model::{Cloud, CloudName};

/// The endpoints and token scopes of one Azure cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Azure Resource Manager, e.g. `https://management.azure.com/`.
    pub arm: Url,
    /// Microsoft Graph, without the version, e.g. `https://graph.microsoft.com/`.
    pub graph: Url,
    /// Entra authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority: Url,
    /// Token scope for ARM (`{audience}/.default`).
    pub arm_scope: String,
    /// Token scope for Graph.
    pub graph_scope: String,
    /// PEM of an extra CA to trust (the sandbox's); `None` uses the system roots only.
    pub extra_ca_pem: Option<String>,
}

fn url(text: &str) -> Url {
    // Only called with the literals below, which are valid.
    Url::parse(text).unwrap_or_else(|_| unreachable!("built-in endpoint {text} is a valid URL"))
}

/// The scope of a resource's audience: `https://management.azure.com` → `…/.default`.
fn scope_of(audience: &str) -> String {
    format!("{}/.default", audience.trim_end_matches('/'))
}

/// Parses an endpoint written in the config or given on the command line: https only (Entra
/// and ARM refuse anything else, and azure_identity rejects an http authority), ending in `/`
/// so that paths join below it.
pub fn parse_endpoint(text: &str) -> Result<Url, String> {
    let mut parsed = Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!("`{text}` must use https"));
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

impl Endpoints {
    /// A national or the public cloud (endpoints from "Azure cloud configurations", the same
    /// table azure_core's `CloudConfiguration` and the Azure CLI's `az cloud list` use).
    pub fn named(name: CloudName) -> Self {
        let (arm, graph, authority, arm_audience, graph_audience) = match name {
            CloudName::Public => (
                "https://management.azure.com/",
                "https://graph.microsoft.com/",
                "https://login.microsoftonline.com/",
                "https://management.azure.com",
                "https://graph.microsoft.com",
            ),
            CloudName::Usgov => (
                "https://management.usgovcloudapi.net/",
                "https://graph.microsoft.us/",
                "https://login.microsoftonline.us/",
                "https://management.usgovcloudapi.net",
                "https://graph.microsoft.us",
            ),
            CloudName::China => (
                "https://management.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
                "https://management.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        };
        Endpoints {
            arm: url(arm),
            graph: url(graph),
            authority: url(authority),
            arm_scope: scope_of(arm_audience),
            graph_scope: scope_of(graph_audience),
            extra_ca_pem: None,
        }
    }

    /// Custom endpoints: the token audiences are the endpoints themselves (Azure Stack Hub and
    /// sovereign clouds name their audiences after their ARM and Graph hosts).
    pub fn custom(arm: &str, graph: &str, authority: &str) -> Result<Self, String> {
        let arm = parse_endpoint(arm)?;
        let graph = parse_endpoint(graph)?;
        let authority = parse_endpoint(authority)?;
        Ok(Endpoints {
            arm_scope: scope_of(arm.as_str()),
            graph_scope: scope_of(graph.as_str()),
            arm,
            graph,
            authority,
            extra_ca_pem: None,
        })
    }

    /// The endpoints `[azure].cloud` names (public when absent).
    pub fn from_config(cloud: Option<&Cloud>) -> Result<Self, String> {
        match cloud {
            None => Ok(Self::named(CloudName::Public)),
            Some(Cloud::Named(name)) => Ok(Self::named(*name)),
            Some(Cloud::Custom(c)) => Self::custom(&c.arm, &c.graph, &c.authority),
        }
    }

    /// The sandbox at `base_url`: ARM, Graph and the authority share its one address (their
    /// paths do not overlap), it trusts the sandbox's CA, and tokens are asked for the public
    /// cloud's audiences, which the sandbox issues as Entra would.
    pub fn sandbox(base_url: &str, ca_pem: &str) -> Result<Self, String> {
        let base = parse_endpoint(base_url)?;
        let public = Self::named(CloudName::Public);
        Ok(Endpoints {
            arm: base.clone(),
            graph: base.clone(),
            authority: base,
            arm_scope: public.arm_scope,
            graph_scope: public.graph_scope,
            extra_ca_pem: Some(ca_pem.to_string()),
        })
    }

    /// Is this the public cloud's ARM? (Only used to word hints.)
    pub fn is_public(&self) -> bool {
        self.arm.host_str() == Some("management.azure.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_clouds_have_their_scopes() {
        let public = Endpoints::named(CloudName::Public);
        assert_eq!(public.arm_scope, "https://management.azure.com/.default");
        assert_eq!(public.graph_scope, "https://graph.microsoft.com/.default");
        let gov = Endpoints::named(CloudName::Usgov);
        assert_eq!(gov.arm.as_str(), "https://management.usgovcloudapi.net/");
        assert_eq!(gov.graph_scope, "https://graph.microsoft.us/.default");
        let china = Endpoints::named(CloudName::China);
        assert_eq!(china.authority.as_str(), "https://login.chinacloudapi.cn/");
    }

    #[test]
    fn custom_endpoints_must_be_https_and_end_in_a_slash() {
        let custom = Endpoints::custom(
            "https://arm.example.com",
            "https://graph.example.com/",
            "https://login.example.com",
        )
        .unwrap();
        assert_eq!(custom.arm.as_str(), "https://arm.example.com/");
        assert_eq!(custom.arm_scope, "https://arm.example.com/.default");
        assert!(
            Endpoints::custom("http://arm", "https://g", "https://l")
                .unwrap_err()
                .contains("https")
        );
        assert!(Endpoints::custom("not a url", "https://g", "https://l").is_err());
    }

    #[test]
    fn the_sandbox_is_one_address_with_public_scopes() {
        let sandbox = Endpoints::sandbox("https://127.0.0.1:8443", "PEM").unwrap();
        assert_eq!(sandbox.arm, sandbox.graph);
        assert_eq!(sandbox.authority.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(sandbox.arm_scope, "https://management.azure.com/.default");
        assert_eq!(sandbox.extra_ca_pem.as_deref(), Some("PEM"));
    }
}
