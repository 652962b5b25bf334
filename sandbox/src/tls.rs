//! HTTPS for the sandbox: a CA generated once and kept with the state (clients trust its PEM),
//! and a server certificate for localhost / 127.0.0.1 / ::1 signed by it at each start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct Tls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Where the CA certificate is kept, when the sandbox has a state directory.
    pub ca_path: Option<PathBuf>,
    pub server: Arc<rustls::ServerConfig>,
}

/// The CA's parameters are fixed, so that an issuer rebuilt from them and the kept key signs
/// certificates that chain to the kept CA certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "wiform sandbox CA");
    name.push(DnType::OrganizationName, "wiform sandbox");
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes a file readable by its owner only (private keys).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

fn io<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> std::io::Error {
    std::io::Error::other(e)
}

pub fn load_or_create(dir: Option<&Path>) -> std::io::Result<Tls> {
    let paths = dir.map(|d| (d.join(crate::client::CA_FILE), d.join("ca-key.pem")));
    let (ca_pem, ca_key) = match &paths {
        Some((cert, key)) if cert.exists() && key.exists() => {
            let key = KeyPair::from_pem(&std::fs::read_to_string(key)?).map_err(io)?;
            (std::fs::read_to_string(cert)?, key)
        }
        _ => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(io)?;
            let cert = ca_params().self_signed(&key).map_err(io)?;
            if let Some((cert_path, key_path)) = &paths {
                write_private(key_path, &key.serialize_pem())?;
                std::fs::write(cert_path, cert.pem())?;
            }
            (cert.pem(), key)
        }
    };
    let issuer = Issuer::new(ca_params(), ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(io)?;
    let mut leaf =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
            .map_err(io)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "wiform sandbox");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(io)?;

    let ca_der =
        rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).map_err(io)?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca_der], key_der)
        .map_err(io)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem,
        ca_path: paths.map(|(cert, _)| cert),
        server: Arc::new(server),
    })
}
