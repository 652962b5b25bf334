//! The emulated clusters: the built-in standalone cluster `sandbox` and one per AKS managed
//! cluster; their tokens, service-account signing keys, issuers, and kubeconfigs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

use crate::App;
use crate::http::ApiError;
use crate::state::{KubeCluster, State, StoreError, now_ms};

/// The id (and name) of the standalone cluster: its API base is `{base_url}/k8s/sandbox`.
pub const STANDALONE: &str = "sandbox";
/// The `iss` of an AKS cluster's tokens while its OIDC issuer is off (what AKS clusters without
/// the issuer use as `--service-account-issuer`).
pub const NO_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The Kubernetes version the standalone cluster reports (the API subset follows v1.34).
const STANDALONE_VERSION: &str = "1.34.0";

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_cluster(id: &str, aks_key: Option<String>) -> KubeCluster {
    let mut cluster = KubeCluster {
        id: id.to_string(),
        aks_key,
        created_ms: now_ms(),
        signing_key_pem: None,
        admin_token: random_token(),
        reader_token: random_token(),
        resource_version: 0,
        namespaces: Default::default(),
        service_accounts: Default::default(),
    };
    super::objects::bootstrap(&mut cluster);
    cluster
}

/// A new standalone cluster (part of a new sandbox state).
pub fn new_standalone_cluster() -> KubeCluster {
    new_cluster(STANDALONE, None)
}

/// The same cluster (tokens, signing key) without the objects created in it.
pub fn emptied(cluster: &KubeCluster) -> KubeCluster {
    let mut fresh = new_cluster(&cluster.id, cluster.aks_key.clone());
    fresh.admin_token = cluster.admin_token.clone();
    fresh.reader_token = cluster.reader_token.clone();
    fresh.signing_key_pem = cluster.signing_key_pem.clone();
    fresh.created_ms = cluster.created_ms;
    fresh
}

// ---------------------------------------------------------------------------------------------
// AKS hooks (called by arm/containers.rs inside its state writes)
// ---------------------------------------------------------------------------------------------

fn issuer_guid(state: &State, aks_key: &str) -> Option<String> {
    let url = state
        .managed_clusters
        .get(aks_key)?
        .properties
        .pointer("/oidcIssuerProfile/issuerURL")?
        .as_str()?;
    let guid = url.trim_end_matches('/').rsplit('/').next()?;
    uuid::Uuid::parse_str(guid).ok().map(|g| g.to_string())
}

/// The guid of an AKS cluster: its API base `{base_url}/k8s/{guid}` and its issuer URL
/// `{base_url}/oidc/{tenant}/{guid}/` share it. A cluster being created gets a new one; an
/// existing one keeps its emulated cluster's (or, for state written before the emulator
/// existed, the one in its issuer URL).
pub fn aks_guid(state: &State, aks_key: &str, creating: bool) -> String {
    if !creating {
        if let Some(cluster) = state
            .kube_clusters
            .values()
            .find(|c| c.aks_key.as_deref() == Some(aks_key))
        {
            return cluster.id.clone();
        }
        if let Some(guid) = issuer_guid(state, aks_key) {
            return guid;
        }
    }
    uuid::Uuid::new_v4().to_string()
}

/// Makes sure the AKS cluster `aks_key` has its emulated Kubernetes API under `guid`; clusters
/// whose AKS cluster is gone (deleted, or its resource group deleted) go.
pub fn attach_aks(state: &mut State, aks_key: &str, guid: &str) {
    let clusters = &state.managed_clusters;
    state.kube_clusters.retain(|id, c| match &c.aks_key {
        None => true,
        Some(key) if key == aks_key => id == guid,
        Some(key) => clusters.contains_key(key),
    });
    if !state.kube_clusters.contains_key(guid) {
        state.kube_clusters.insert(
            guid.to_string(),
            new_cluster(guid, Some(aks_key.to_string())),
        );
    }
}

/// The AKS cluster `aks_key` is gone: so is its Kubernetes API.
pub fn detach_aks(state: &mut State, aks_key: &str) {
    state
        .kube_clusters
        .retain(|_, c| c.aks_key.as_deref() != Some(aks_key));
}

// ---------------------------------------------------------------------------------------------
// What a request sees of its cluster
// ---------------------------------------------------------------------------------------------

/// A cluster as requests see it.
#[derive(Debug, Clone)]
pub struct View {
    pub id: String,
    /// `iss` of its tokens and base of its OIDC discovery.
    pub issuer: String,
    /// Whether the issuer's discovery documents are published (always for the standalone
    /// cluster; for AKS while the OIDC issuer is on).
    pub issuer_enabled: bool,
    pub api_base: String,
    pub version: String,
    pub admin_token: String,
    pub reader_token: String,
}

/// The cluster `id` serves: the standalone one, or an AKS cluster's that still exists.
pub fn view(state: &State, base_url: &str, id: &str) -> Option<View> {
    let cluster = state.kube_clusters.get(id)?;
    let api_base = format!("{base_url}/k8s/{id}");
    let (issuer, issuer_enabled, version) = match &cluster.aks_key {
        None => (api_base.clone(), true, STANDALONE_VERSION.to_string()),
        Some(key) => {
            let aks = state.managed_clusters.get(key)?;
            let props = &aks.properties;
            let enabled = props
                .pointer("/oidcIssuerProfile/enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let url = props
                .pointer("/oidcIssuerProfile/issuerURL")
                .and_then(Value::as_str)
                .filter(|_| enabled);
            let version = props
                .get("currentKubernetesVersion")
                .and_then(Value::as_str)
                .unwrap_or("1.33.0")
                .to_string();
            match url {
                Some(url) => (url.to_string(), true, version),
                None => (NO_ISSUER.to_string(), false, version),
            }
        }
    };
    Some(View {
        id: id.to_string(),
        issuer,
        issuer_enabled,
        api_base,
        version,
        admin_token: cluster.admin_token.clone(),
        reader_token: cluster.reader_token.clone(),
    })
}

/// How to reach a cluster: what a kubeconfig holds, and the issuer.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    pub id: String,
    /// The API base URL (`server` of a kubeconfig).
    pub server: String,
    /// The service-account issuer (`iss` of minted tokens).
    pub issuer: String,
    /// The CA that signs the sandbox's serving certificate.
    pub ca_pem: String,
    /// A `system:masters` bearer token.
    pub admin_token: String,
    /// A bearer token that may only get/list/watch namespaces and service accounts.
    pub reader_token: String,
}

impl ClusterAccess {
    fn of(app: &App, view: View) -> Self {
        ClusterAccess {
            id: view.id,
            server: view.api_base,
            issuer: view.issuer,
            ca_pem: app.ca_pem.clone(),
            admin_token: view.admin_token,
            reader_token: view.reader_token,
        }
    }

    /// A kubeconfig for this cluster: the server, the sandbox CA (`certificate-authority-data`)
    /// and one user with `token` (the shape `az aks get-credentials` writes).
    pub fn kubeconfig(&self, name: &str, user: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {user}\n  name: {name}\ncurrent-context: {name}\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    token: {token}\n",
            ca = STANDARD.encode(self.ca_pem.as_bytes()),
            server = self.server,
        )
    }
}

/// The standalone cluster `sandbox` (made when a state file written before it existed lacks it).
pub fn standalone(app: &App) -> Result<ClusterAccess, StoreError> {
    if let Some(view) = app.store.read(|s| view(s, &app.base_url, STANDALONE)) {
        return Ok(ClusterAccess::of(app, view));
    }
    let view = app.store.update(|s| {
        if !s.kube_clusters.contains_key(STANDALONE) {
            let cluster = new_standalone_cluster();
            s.kube_clusters.insert(STANDALONE.into(), cluster);
        }
        Ok::<_, StoreError>(view(s, &app.base_url, STANDALONE))
    })?;
    Ok(ClusterAccess::of(
        app,
        view.expect("the standalone cluster was just made"),
    ))
}

/// The Kubernetes API of an AKS managed cluster (by its lowercased ARM id), made when missing;
/// `None` when there is no such AKS cluster.
pub fn aks_access(app: &App, aks_key: &str) -> Result<Option<ClusterAccess>, StoreError> {
    let found = |s: &State| {
        s.kube_clusters
            .values()
            .find(|c| c.aks_key.as_deref() == Some(aks_key))
            .and_then(|c| view(s, &app.base_url, &c.id))
    };
    if let Some(view) = app.store.read(found) {
        return Ok(Some(ClusterAccess::of(app, view)));
    }
    let view = app.store.update(|s| {
        if !s.managed_clusters.contains_key(aks_key) {
            return Ok::<_, StoreError>(None);
        }
        let guid = aks_guid(s, aks_key, false);
        attach_aks(s, aks_key, &guid);
        Ok(found(s))
    })?;
    Ok(view.map(|v| ClusterAccess::of(app, v)))
}

// ---------------------------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------------------------

/// A cluster's service-account signing key, ready to sign and verify.
pub struct Signer {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// As kube-apiserver computes it (`keyIDFromPublicKey`): base64url of the SHA-256 of the
    /// public key's PKIX DER.
    pub kid: String,
    /// Its JWKS entry.
    pub jwk: Value,
}

/// Reads a DER length at `at`; returns (length, header bytes used).
fn der_length(der: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *der.get(at)?;
    if first < 0x80 {
        return Some((first as usize, 1));
    }
    let count = (first & 0x7f) as usize;
    if count == 0 || count > 4 {
        return None;
    }
    let mut length = 0usize;
    for i in 0..count {
        length = (length << 8) | *der.get(at + 1 + i)? as usize;
    }
    Some((length, 1 + count))
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (PKCS #1): n and e,
/// without leading zero bytes.
fn rsa_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if *der.first()? != 0x30 {
        return None;
    }
    let (_, header) = der_length(der, 1)?;
    let mut at = 1 + header;
    let mut integers = Vec::new();
    for _ in 0..2 {
        if *der.get(at)? != 0x02 {
            return None;
        }
        let (length, header) = der_length(der, at + 1)?;
        let start = at + 1 + header;
        let bytes = der.get(start..start + length)?;
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        integers.push(trimmed);
        at = start + length;
    }
    let e = integers.pop()?;
    let n = integers.pop()?;
    Some((n, e))
}

/// SHA-256 through the TLS stack's aws-lc provider (no other hashing crate is needed).
fn sha256(data: &[u8]) -> Option<Vec<u8>> {
    match rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256 {
        rustls::SupportedCipherSuite::Tls13(suite) => {
            Some(suite.common.hash_provider.hash(data).as_ref().to_vec())
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn parse_signer(pem: &str) -> Result<Signer, String> {
    let pair = rcgen::KeyPair::from_pem(pem).map_err(|e| e.to_string())?;
    let (n, e) =
        rsa_components(pair.public_key_raw()).ok_or("the signing key is not an RSA key")?;
    let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
    let kid = URL_SAFE_NO_PAD
        .encode(sha256(&rcgen::PublicKeyData::subject_public_key_info(&pair)).ok_or("no SHA-256")?);
    Ok(Signer {
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?,
        decoding: DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?,
        jwk: json!({ "use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": n, "e": e }),
        kid,
    })
}

/// Parsed keys, by PEM: parsing an RSA key on every request would be wasted work.
fn cache() -> &'static Mutex<HashMap<String, Arc<Signer>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Signer>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn signer_of(pem: &str) -> Result<Arc<Signer>, ApiError> {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(signer) = cache.get(pem) {
        return Ok(signer.clone());
    }
    let signer = Arc::new(parse_signer(pem).map_err(|e| {
        ApiError::kube(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("the cluster's service-account signing key is unusable: {e}"),
        )
    })?);
    if cache.len() > 256 {
        cache.clear();
    }
    cache.insert(pem.to_string(), signer.clone());
    Ok(signer)
}

/// The cluster's key if it has one already (tokens can only have been minted with it).
pub fn existing_signer(state: &State, id: &str) -> Option<Result<Arc<Signer>, ApiError>> {
    state
        .kube_clusters
        .get(id)?
        .signing_key_pem
        .as_deref()
        .map(signer_of)
}

/// The cluster's key, made (RSA 2048, RS256: Entra accepts only RS256) on first use.
pub fn signer(app: &App, id: &str) -> Result<Arc<Signer>, ApiError> {
    if let Some(signer) = app.store.read(|s| existing_signer(s, id)) {
        return signer;
    }
    let made = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map(|k| k.serialize_pem())
        .map_err(|e| {
            ApiError::kube(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("cannot make a service-account signing key: {e}"),
            )
        })?;
    let pem = app.store.update(|s| {
        let Some(cluster) = s.kube_clusters.get_mut(id) else {
            return Err(super::errors::no_such_resource());
        };
        Ok(cluster.signing_key_pem.get_or_insert(made).clone())
    })?;
    signer_of(&pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_publishes_itself() {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .unwrap()
            .serialize_pem();
        let signer = parse_signer(&pem).unwrap();
        assert_eq!(signer.jwk["e"], "AQAB");
        assert_eq!(signer.jwk["alg"], "RS256");
        // 2048-bit modulus: 256 bytes, 342 base64url characters.
        assert_eq!(signer.jwk["n"].as_str().unwrap().len(), 342);
        assert_eq!(signer.kid.len(), 43);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        let token = jsonwebtoken::encode(
            &header,
            &json!({"sub": "x", "exp": u32::MAX}),
            &signer.encoding,
        )
        .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(signer.jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    }

    #[test]
    fn malformed_der_is_refused() {
        assert!(rsa_components(&[]).is_none());
        assert!(rsa_components(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_none());
        assert!(rsa_components(&[0x30, 0x03, 0x02, 0x05, 0x01]).is_none());
    }
}
