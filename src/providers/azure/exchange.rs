//! What a workload does to get its Azure token, done by `wiform verify`: read the issuer's
//! discovery document and keys as Entra will, and exchange a service account token at the Entra
//! token endpoint (client credentials with a JWT client assertion, as the Azure SDKs' workload
//! identity credential does). No token is ever printed or logged: the access token is dropped
//! as soon as its presence is checked.

use serde::Deserialize;

use super::AzureClient;

/// The client assertion type of a federated token ("Microsoft identity platform application
/// authentication certificate credentials", RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entra's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// `invalid_client`, `invalid_request`, …
    pub error: String,
    /// The AADSTS number (`error_codes[0]`, else read from the description).
    pub code: Option<u32>,
    pub description: String,
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeError {
    Refused(Refusal),
    /// No answer, or not one Entra gives.
    Unreachable(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
    trace_id: Option<String>,
}

/// `AADSTS70021: …` → 70021.
fn aadsts(description: &str) -> Option<u32> {
    let rest = &description[description.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Exchanges `assertion` (a service account token) for an access token of `client_id` in
/// `tenant` for `scope`.
pub async fn exchange(
    client: &AzureClient,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    scope: &str,
) -> Result<(), ExchangeError> {
    let url = client
        .endpoints()
        .authority
        .join(&format!("{tenant}/oauth2/v2.0/token"))
        .map_err(|e| ExchangeError::Unreachable(format!("bad token endpoint: {e}")))?;
    let answer = client
        .http()
        .post(url.clone())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", scope),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .map_err(|e| ExchangeError::Unreachable(format!("{url}: {e}")))?;
    let status = answer.status().as_u16();
    let body = answer
        .text()
        .await
        .map_err(|e| ExchangeError::Unreachable(format!("{url}: {e}")))?;
    if status == 200 {
        let has_token = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        return if has_token {
            Ok(())
        } else {
            Err(ExchangeError::Unreachable(format!(
                "{url} answered 200 without an access token"
            )))
        };
    }
    match serde_json::from_str::<ErrorBody>(&body) {
        Ok(e) => Err(ExchangeError::Refused(Refusal {
            status,
            code: e
                .error_codes
                .first()
                .copied()
                .or_else(|| aadsts(&e.error_description)),
            error: e.error,
            description: e.error_description,
            trace_id: e.trace_id,
        })),
        Err(_) => Err(ExchangeError::Unreachable(format!(
            "{url} answered {status} with a body that is not Entra's error"
        ))),
    }
}

/// What the issuer's discovery document says, read from the issuer URL itself (as Entra reads
/// it), and how many keys its JWKS holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerCheck {
    pub discovered_issuer: String,
    pub jwks_uri: String,
    pub keys: usize,
}

/// Reads `{issuer}/.well-known/openid-configuration` and its `jwks_uri`.
pub async fn check_issuer(client: &AzureClient, issuer: &str) -> Result<IssuerCheck, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let get = |url: String| async move {
        let answer = client
            .http()
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {}", status.as_u16()));
        }
        answer
            .json::<serde_json::Value>()
            .await
            .map_err(|e| format!("GET {url}: not JSON ({e})"))
    };
    let discovery = get(url.clone()).await?;
    let discovered_issuer = discovery["issuer"]
        .as_str()
        .ok_or_else(|| format!("{url} has no \"issuer\""))?
        .to_string();
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("{url} has no \"jwks_uri\""))?
        .to_string();
    let jwks = get(jwks_uri.clone()).await?;
    let keys = jwks["keys"].as_array().map_or(0, Vec::len);
    Ok(IssuerCheck {
        discovered_issuer,
        jwks_uri,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aadsts_number_is_read_from_the_description() {
        assert_eq!(
            aadsts("AADSTS70021: No matching federated identity record found"),
            Some(70021)
        );
        assert_eq!(aadsts("no code"), None);
    }
}
