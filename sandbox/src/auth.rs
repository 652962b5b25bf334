//! Who is calling: the sandbox's token signing key, access tokens it mints, bearer-token checks
//! on ARM and Graph, and Azure RBAC evaluation of the caller's role assignments.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{Api, ApiError};
use crate::state::{State, key};

/// Audiences of the APIs the sandbox serves (with and without the trailing slash, as Entra
/// issues both depending on the requested scope).
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
];
pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
];

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its service principal's object id.
    pub object_id: String,
    /// Its client (app) id.
    pub client_id: String,
    pub tenant_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub oid: String,
    pub sub: String,
    pub tid: String,
    pub appid: String,
    pub azp: String,
    pub idtyp: String,
    pub ver: String,
}

/// The key the sandbox signs access tokens with (ES256), kept beside the state so that tokens
/// survive a restart.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub kid: String,
    x: String,
    y: String,
}

impl SigningKey {
    /// Loads the key from `dir/signing-key.pem`, or makes one there.
    pub fn load_or_create(dir: Option<&Path>) -> std::io::Result<Self> {
        let path = dir.map(|d| d.join("signing-key.pem"));
        let pem = match &path {
            Some(path) if path.exists() => std::fs::read_to_string(path)?,
            _ => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(std::io::Error::other)?;
                let pem = key.serialize_pem();
                if let Some(path) = &path {
                    crate::tls::write_private(path, &pem)?;
                }
                pem
            }
        };
        let pair = rcgen::KeyPair::from_pem(&pem).map_err(std::io::Error::other)?;
        let raw = pair.public_key_raw();
        if raw.len() != 65 || raw[0] != 4 {
            return Err(std::io::Error::other(
                "signing key is not an uncompressed P-256 point",
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(&raw[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&raw[33..65]);
        let kid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, raw)
            .simple()
            .to_string();
        Ok(SigningKey {
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).map_err(std::io::Error::other)?,
            decoding: DecodingKey::from_ec_components(&x, &y).map_err(std::io::Error::other)?,
            kid,
            x,
            y,
        })
    }

    /// The JWKS document that publishes the key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [{ "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid, "x": self.x, "y": self.y }] })
    }

    /// An access token for `audience`, valid for `lifetime_s`.
    pub fn mint(&self, issuer: &str, caller: &Caller, audience: &str, lifetime_s: u64) -> String {
        let now = crate::state::now_ms() / 1000;
        let claims = AccessClaims {
            aud: audience.to_string(),
            iss: issuer.to_string(),
            iat: now,
            nbf: now,
            exp: now + lifetime_s,
            oid: caller.object_id.clone(),
            sub: caller.object_id.clone(),
            tid: caller.tenant_id.clone(),
            appid: caller.client_id.clone(),
            azp: caller.client_id.clone(),
            idtyp: "app".into(),
            ver: "2.0".into(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap_or_default()
    }

    fn verify(
        &self,
        token: &str,
        audiences: &[&str],
    ) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(audiences);
        validation.leeway = 0;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).map(|d| d.claims)
    }
}

/// Checks the bearer token of an ARM or Graph request (401 in that service's shape otherwise).
pub fn authenticate(
    key: &SigningKey,
    headers: &HeaderMap,
    api: Api,
    tenant_id: &str,
    authority: &str,
) -> Result<Caller, ApiError> {
    let audiences = if api == Api::Graph {
        GRAPH_AUDIENCES
    } else {
        ARM_AUDIENCES
    };
    let unauthorized = |code: &str, message: &str, description: &str| -> ApiError {
        match api {
            Api::Graph => ApiError::graph(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message),
            _ => ApiError::arm(StatusCode::UNAUTHORIZED, code, message).with_header(
                "WWW-Authenticate",
                format!("Bearer authorization_uri=\"{authority}/{tenant_id}\", error=\"invalid_token\", error_description=\"{description}\""),
            ),
        }
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized(
            "AuthenticationFailed",
            if api == Api::Graph {
                "Access token is empty."
            } else {
                "Authentication failed. The 'Authorization' header is missing."
            },
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let token = match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => {
            return Err(unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                "The authentication failed because of invalid 'Authorization' header format.",
            ));
        }
    };
    match key.verify(token, audiences) {
        Ok(claims) => Ok(Caller {
            object_id: claims.oid,
            client_id: claims.appid,
            tenant_id: claims.tid,
        }),
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            Err(unauthorized(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                "The access token has expired.",
            ))
        }
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidAudience) => {
            Err(unauthorized(
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for wrong audience or resource. It should exactly match with one of the allowed audiences.",
                "The access token audience is not valid.",
            ))
        }
        Err(_) => Err(unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token is invalid.",
        )),
    }
}

/// Azure's action matching: case-insensitive, `*` matches any run of characters.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == a;
    }
    let mut rest = a.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// True when `scope` is `ancestor` or below it (ARM ids, case-insensitive).
pub fn scope_contains(ancestor: &str, scope: &str) -> bool {
    let (a, s) = (
        key(ancestor.trim_end_matches('/')),
        key(scope.trim_end_matches('/')),
    );
    a.is_empty() || a == "/" || s == a || s.starts_with(&format!("{a}/"))
}

/// The actions and not-actions of a role definition id (built-in or custom).
pub fn role_permissions(
    state: &State,
    role_definition_id: &str,
) -> Option<(Vec<String>, Vec<String>)> {
    let guid = role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or(role_definition_id);
    if let Some(builtin) = crate::builtin_roles::by_id(guid) {
        return Some((
            builtin.actions.iter().map(|s| s.to_string()).collect(),
            builtin.not_actions.iter().map(|s| s.to_string()).collect(),
        ));
    }
    state
        .role_definitions
        .values()
        .find(|d| d.name.eq_ignore_ascii_case(guid))
        .map(|d| (d.actions.clone(), d.not_actions.clone()))
}

/// Azure RBAC: allowed when a role assignment of the caller at or above `scope` grants `action`
/// and its role does not exclude it. 403 `AuthorizationFailed` (ARM's message) otherwise.
pub fn authorize(
    state: &State,
    caller: &Caller,
    action: &str,
    scope: &str,
) -> Result<(), ApiError> {
    let allowed = state.role_assignments.values().any(|assignment| {
        assignment
            .principal_id
            .eq_ignore_ascii_case(&caller.object_id)
            && scope_contains(&assignment.scope, scope)
            && role_permissions(state, &assignment.role_definition_id).is_some_and(
                |(actions, not_actions)| {
                    actions.iter().any(|a| action_matches(a, action))
                        && !not_actions.iter().any(|n| action_matches(n, action))
                },
            )
    });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::arm(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                caller.client_id, caller.object_id
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_like_azure() {
        assert!(action_matches(
            "*",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write"
        ));
        assert!(action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read"
        ));
        assert!(!action_matches(
            "*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/write"
        ));
        assert!(action_matches(
            "Microsoft.Authorization/*/Write",
            "microsoft.authorization/roleAssignments/write"
        ));
        assert!(!action_matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Storage/x/write"
        ));
    }

    #[test]
    fn scopes_nest() {
        assert!(scope_contains(
            "/subscriptions/S",
            "/subscriptions/s/resourceGroups/rg"
        ));
        assert!(!scope_contains(
            "/subscriptions/s/resourceGroups/rg",
            "/subscriptions/s/resourceGroups/rg2"
        ));
        assert!(!scope_contains(
            "/subscriptions/s/resourceGroups/rg",
            "/subscriptions/s/resourceGroups/rg-x"
        ));
    }

    #[test]
    fn owner_may_write_and_reader_may_only_read() {
        let state = State::new();
        let caller = |client: &str| {
            let sp = state.principal_by_client_id(client).unwrap();
            Caller {
                object_id: sp.id.clone(),
                client_id: client.into(),
                tenant_id: state.tenant_id.clone(),
            }
        };
        let scope = format!(
            "/subscriptions/{}/resourceGroups/rg",
            crate::state::DEFAULT_SUBSCRIPTION
        );
        let write = "Microsoft.ManagedIdentity/userAssignedIdentities/write";
        assert!(
            authorize(
                &state,
                &caller(crate::state::ADMIN_CLIENT_ID),
                write,
                &scope
            )
            .is_ok()
        );
        let denied = authorize(
            &state,
            &caller(crate::state::READER_CLIENT_ID),
            write,
            &scope,
        )
        .unwrap_err();
        assert_eq!(denied.code(), "AuthorizationFailed");
        assert!(
            authorize(
                &state,
                &caller(crate::state::READER_CLIENT_ID),
                "Microsoft.ManagedIdentity/userAssignedIdentities/read",
                &scope
            )
            .is_ok()
        );
    }

    #[test]
    fn tokens_round_trip_and_audience_is_checked() {
        let key = SigningKey::load_or_create(None).unwrap();
        let caller = Caller {
            object_id: "o".into(),
            client_id: "c".into(),
            tenant_id: "t".into(),
        };
        let token = key.mint(
            "https://issuer",
            &caller,
            "https://management.azure.com",
            60,
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert_eq!(
            authenticate(&key, &headers, Api::Arm, "t", "https://a").unwrap(),
            caller
        );
        let wrong = authenticate(&key, &headers, Api::Graph, "t", "https://a").unwrap_err();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            authenticate(&key, &HeaderMap::new(), Api::Arm, "t", "https://a")
                .unwrap_err()
                .code(),
            "AuthenticationFailed"
        );
    }
}
