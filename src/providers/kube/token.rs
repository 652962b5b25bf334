//! Service account tokens (TokenRequest, for `verify`) and the cluster's OIDC discovery
//! document (its issuer).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{KubeError, KubeErrorKind};

/// A token minted by TokenRequest. Its `Debug` and `Display` never show the token itself: call
/// [`ServiceAccountToken::expose`] where it is really needed (the token exchange).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccountToken {
    pub namespace: String,
    pub name: String,
    pub audiences: Vec<String>,
    /// `status.expirationTimestamp` as the server wrote it (RFC 3339).
    pub expires_at: Option<String>,
    token: String,
}

impl ServiceAccountToken {
    pub(crate) fn new(
        namespace: &str,
        name: &str,
        audiences: &[String],
        expires_at: Option<String>,
        token: String,
    ) -> Self {
        ServiceAccountToken {
            namespace: namespace.into(),
            name: name.into(),
            audiences: audiences.to_vec(),
            expires_at,
            token,
        }
    }

    /// The JWT. Do not print or log it.
    pub fn expose(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for ServiceAccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountToken")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("audiences", &self.audiences)
            .field("expires_at", &self.expires_at)
            .field(
                "token",
                &format_args!("<redacted, {} bytes>", self.token.len()),
            )
            .finish()
    }
}

impl fmt::Display for ServiceAccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token of serviceaccounts \"{}/{}\" for {}",
            self.namespace,
            self.name,
            self.audiences.join(", ")
        )?;
        if let Some(at) = &self.expires_at {
            write!(f, ", expires {at}")?;
        }
        Ok(())
    }
}

/// What the TokenRequest answer holds that wiform reads.
#[derive(Deserialize)]
pub(crate) struct TokenRequestAnswer {
    pub status: Option<TokenRequestAnswerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenRequestAnswerStatus {
    #[serde(default)]
    pub token: String,
    pub expiration_timestamp: Option<String>,
}

/// The parts of `/.well-known/openid-configuration` wiform uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDiscovery {
    /// The issuer, exactly as the document writes it (and as tokens carry it in `iss`).
    pub issuer: String,
    pub jwks_uri: String,
}

impl IssuerDiscovery {
    /// Reads a discovery document; the error says what is missing (never echoing the body).
    pub fn parse(body: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
        let field = |name: &str| -> Result<String, String> {
            match &value[name] {
                serde_json::Value::String(s) if !s.is_empty() => Ok(s.clone()),
                serde_json::Value::Null => Err(format!("it has no \"{name}\"")),
                _ => Err(format!("its \"{name}\" is not a non-empty string")),
            }
        };
        Ok(IssuerDiscovery {
            issuer: field("issuer")?,
            jwks_uri: field("jwks_uri")?,
        })
    }
}

/// Checks a configured issuer against the discovered one, byte for byte (a trailing slash
/// counts: Entra compares the token's `iss` claim exactly).
pub fn check_issuer(
    cluster: &str,
    configured: &str,
    discovered: &IssuerDiscovery,
) -> Result<(), KubeError> {
    if configured == discovered.issuer {
        Ok(())
    } else {
        Err(KubeErrorKind::IssuerMismatch {
            cluster: cluster.into(),
            configured: configured.into(),
            discovered: discovered.issuer.clone(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows() {
        let t = ServiceAccountToken::new(
            "orders",
            "api",
            &["api://AzureADTokenExchange".into()],
            Some("2030-01-01T00:00:00Z".into()),
            "eyJhbGciOi.secret.sig".into(),
        );
        let shown = format!("{t:?} {t} {t:#?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted, 21 bytes>"), "{shown}");
        assert_eq!(
            t.to_string(),
            "token of serviceaccounts \"orders/api\" for api://AzureADTokenExchange, expires 2030-01-01T00:00:00Z"
        );
        assert_eq!(t.expose(), "eyJhbGciOi.secret.sig");
    }

    #[test]
    fn discovery_documents_are_checked() {
        let d = IssuerDiscovery::parse(
            r#"{"issuer":"https://x.example/","jwks_uri":"https://x.example/openid/v1/jwks","response_types_supported":["id_token"]}"#,
        )
        .unwrap();
        assert_eq!(d.issuer, "https://x.example/");
        assert_eq!(
            IssuerDiscovery::parse(r#"{"jwks_uri":"j"}"#).unwrap_err(),
            "it has no \"issuer\""
        );
        assert_eq!(
            IssuerDiscovery::parse(r#"{"issuer":3,"jwks_uri":"j"}"#).unwrap_err(),
            "its \"issuer\" is not a non-empty string"
        );
        assert!(
            IssuerDiscovery::parse("<html>")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(IssuerDiscovery::parse("[]").is_err());
        assert!(check_issuer("c", "https://x.example/", &d).is_ok());
        let e = check_issuer("c", "https://x.example", &d).unwrap_err();
        assert!(matches!(e.kind(), KubeErrorKind::IssuerMismatch { .. }));
        assert!(e.to_string().contains("trailing slash"), "{e}");
    }
}
