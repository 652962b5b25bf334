//! A federated identity credential as Azure reports it, whichever identity holds it: a managed
//! identity (ARM, `Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials`)
//! or an application (Graph, `applications/{id}/federatedIdentityCredentials`). Issuer, subject
//! and audiences compare with case (Entra matches them case-sensitively); the name does not.

use serde::Serialize;
use serde::ser::SerializeStruct;

/// The identity a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialParent {
    /// The managed identity's ARM id, as ARM spelled it.
    ManagedIdentity(String),
    /// The application's object id.
    Application(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCredential {
    pub parent: CredentialParent,
    /// ARM id as returned (managed identity), or the credential's object id, lower-case
    /// (application).
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    /// Applications only (a managed identity's credential has none).
    pub description: Option<String>,
}

impl LiveCredential {
    /// True when this is the credential named `name` (names compare without case, like every
    /// ARM name).
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The shape each provider's credentials always had (a managed identity's without
/// `description`): plan fingerprints hash it, so saved plans stay valid across versions.
impl Serialize for LiveCredential {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let application = matches!(self.parent, CredentialParent::Application(_));
        let mut s = serializer.serialize_struct("LiveCredential", 5 + usize::from(application))?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("issuer", &self.issuer)?;
        s.serialize_field("subject", &self.subject)?;
        s.serialize_field("audiences", &self.audiences)?;
        if application {
            s.serialize_field("description", &self.description)?;
        }
        s.end()
    }
}
