//! The resource instances of `terraform show -json` output ("JSON Output Format", the values
//! representation): `values.root_module.resources[]` and, recursively, `child_modules[]`, each
//! resource with `address`, `mode`, `type`, `name`, `index`, `provider_name` and `values`; then
//! the attributes wiform maps, read per resource type.

use serde_json::Value;

use super::json::{Node, Obj, ReadError};
use crate::arm_id;

/// Modules nest at most this deep (Terraform has no limit; real configurations stay far below).
const MAX_MODULE_DEPTH: usize = 64;

/// The instances of a state, in document order (each module's resources, then its children).
#[derive(Debug)]
pub struct State<'a> {
    pub terraform_version: Option<&'a str>,
    pub instances: Vec<Instance<'a>>,
}

/// One resource instance.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    /// Its absolute address, as Terraform wrote it (`module.x.azurerm_y.z["k"]`).
    pub address: &'a str,
    /// `managed` or `data`.
    pub mode: &'a str,
    /// The resource type (`azurerm_user_assigned_identity`).
    pub kind: &'a str,
    /// Its attributes (`None` when the document has none).
    pub values: Option<Obj<'a>>,
    /// A deposed object (one that `create_before_destroy` has not destroyed yet).
    pub deposed: bool,
    /// Its JSON path in the document.
    pub path: String,
}

impl Instance<'_> {
    pub fn managed(&self) -> bool {
        self.mode == "managed"
    }
}

/// Reads the document's instances; errors name the JSON path of what is malformed.
pub fn read(doc: &Value) -> Result<State<'_>, ReadError> {
    let root = Node::root(doc).object().map_err(|_| {
        ReadError::new(
            "",
            "the document is not a JSON object (terraform show -json prints one)",
        )
    })?;
    if root.get("format_version").is_none() {
        if root.get("resources").is_some() && root.get("version").is_some() {
            return Err(ReadError::new(
                "",
                "this is a Terraform state file (terraform.tfstate), not the output of `terraform show -json`",
            ));
        }
        return Err(ReadError::new(
            "format_version",
            "is missing: this is not the output of `terraform show -json`",
        ));
    }
    let version = root.req_str("format_version")?;
    if !matches!(version.split('.').next(), Some("0" | "1")) {
        return Err(ReadError::new(
            "format_version",
            format!("is {version:?}; wiform reads format 1.x (Terraform 0.12 and later)"),
        )
        .with_hint("export the state with a Terraform release that writes format 1.x, or tell us which release wrote this one"));
    }
    if root.get("planned_values").is_some() || root.get("resource_changes").is_some() {
        return Err(ReadError::new(
            "",
            "this is a plan (terraform show -json PLANFILE), not the current state",
        ));
    }
    let terraform_version = root.str("terraform_version")?;
    let mut instances = Vec::new();
    if let Some(values) = root.get("values") {
        let module = values.object()?.required("root_module")?.object()?;
        walk(&module, 0, &mut instances)?;
    }
    Ok(State {
        terraform_version,
        instances,
    })
}

fn walk<'a>(module: &Obj<'a>, depth: usize, out: &mut Vec<Instance<'a>>) -> Result<(), ReadError> {
    if depth > MAX_MODULE_DEPTH {
        return Err(ReadError::new(
            &module.path,
            format!("modules are nested more than {MAX_MODULE_DEPTH} deep"),
        ));
    }
    if depth > 0 {
        module.req_str("address")?;
    }
    for resource in module.array("resources")? {
        let resource = resource.object()?;
        out.push(Instance {
            address: resource.req_str("address")?,
            mode: resource.req_str("mode")?,
            kind: resource.req_str("type")?,
            values: match resource.get("values") {
                Some(values) => Some(values.object()?),
                None => None,
            },
            deposed: resource.str("deposed")?.is_some(),
            path: resource.path.clone(),
        });
        resource.req_str("name")?;
    }
    for child in module.array("child_modules")? {
        walk(&child.object()?, depth + 1, out)?;
    }
    Ok(())
}

/// `azurerm_user_assigned_identity`.
#[derive(Debug, Clone)]
pub struct UserAssignedIdentity<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub resource_group: &'a str,
    pub location: Option<&'a str>,
    pub tags: Vec<(String, String)>,
    pub client_id: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
}

impl<'a> UserAssignedIdentity<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        Ok(UserAssignedIdentity {
            id: v.req_str("id")?,
            name: v.req_str("name")?,
            resource_group: v.req_str("resource_group_name")?,
            location: v.str("location")?,
            tags: v.string_map("tags")?,
            client_id: v.str("client_id")?,
            principal_id: v.str("principal_id")?,
            tenant_id: v.str("tenant_id")?,
        })
    }
}

/// A federated credential, of a managed identity (`azurerm_federated_identity_credential`) or
/// of an application (`azuread_application_federated_identity_credential`).
#[derive(Debug, Clone)]
pub struct Credential<'a> {
    /// Its ARM id, or the provider's id of an application's credential.
    pub id: Option<&'a str>,
    pub name: &'a str,
    /// The managed identity's ARM id, or the application's object id.
    pub parent: String,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audiences: Vec<String>,
}

impl<'a> Credential<'a> {
    /// azurerm 4.x names the identity `parent_id`; 5.x `user_assigned_identity_id`.
    pub fn read_managed(v: &Obj<'a>) -> Result<Self, ReadError> {
        let parent = match v.str("user_assigned_identity_id")? {
            Some(parent) => parent,
            None => v.req_str("parent_id")?,
        };
        Ok(Credential {
            id: v.str("id")?,
            name: v.req_str("name")?,
            parent: parent.to_string(),
            issuer: v.req_str("issuer")?,
            subject: v.req_str("subject")?,
            audiences: v.strings("audience")?,
        })
    }

    /// azuread 3.x: `application_id` is `/applications/{object id}`; 2.x:
    /// `application_object_id`.
    pub fn read_application(v: &Obj<'a>) -> Result<Self, ReadError> {
        let parent = match v.str("application_id")? {
            Some(id) => id,
            None => v.req_str("application_object_id")?,
        };
        Ok(Credential {
            id: v.str("id")?,
            name: v.req_str("display_name")?,
            parent: graph_object_id(parent).to_string(),
            issuer: v.req_str("issuer")?,
            subject: v.req_str("subject")?,
            audiences: v.strings("audiences")?,
        })
    }
}

/// `/applications/{id}` or `/servicePrincipals/{id}` → `{id}`; a bare id as it is.
pub fn graph_object_id(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// `azuread_application` (or `azuread_application_registration`).
#[derive(Debug, Clone)]
pub struct Application<'a> {
    pub id: Option<&'a str>,
    pub display_name: &'a str,
    /// The application (client) id: `client_id` in azuread 3.x, `application_id` in 2.x.
    pub client_id: Option<&'a str>,
    pub object_id: Option<String>,
}

impl<'a> Application<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        let id = v.str("id")?;
        let object_id = match v.str("object_id")? {
            Some(object_id) => Some(object_id),
            None => id.map(graph_object_id),
        };
        let client_id = match v.str("client_id")? {
            Some(client_id) => Some(client_id),
            None => v.str("application_id")?,
        };
        Ok(Application {
            id,
            display_name: v.req_str("display_name")?,
            client_id,
            object_id: object_id.map(str::to_string),
        })
    }
}

/// `azuread_service_principal`.
#[derive(Debug, Clone)]
pub struct ServicePrincipal<'a> {
    pub id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
}

impl<'a> ServicePrincipal<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        let client_id = match v.str("client_id")? {
            Some(client_id) => Some(client_id),
            None => v.str("application_id")?,
        };
        let id = v.str("id")?;
        Ok(ServicePrincipal {
            id,
            client_id,
            object_id: match v.str("object_id")? {
                Some(object_id) => Some(object_id),
                None => id.map(graph_object_id),
            },
            tenant_id: v.str("application_tenant_id")?,
        })
    }
}

/// `azurerm_role_assignment`.
#[derive(Debug, Clone)]
pub struct RoleAssignment<'a> {
    pub id: Option<&'a str>,
    pub scope: &'a str,
    pub role_definition_id: Option<&'a str>,
    pub role_definition_name: Option<&'a str>,
    pub principal_id: &'a str,
    pub condition: Option<&'a str>,
    pub condition_version: Option<&'a str>,
    pub delegated_identity: Option<&'a str>,
}

impl<'a> RoleAssignment<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        Ok(RoleAssignment {
            id: v.str("id")?,
            scope: v.req_str("scope")?,
            role_definition_id: v.str("role_definition_id")?,
            role_definition_name: v.str("role_definition_name")?,
            principal_id: v.req_str("principal_id")?,
            condition: v.str("condition")?,
            condition_version: v.str("condition_version")?,
            delegated_identity: v.str("delegated_managed_identity_resource_id")?,
        })
    }
}

/// `kubernetes_service_account` / `kubernetes_service_account_v1`.
#[derive(Debug, Clone)]
pub struct KubeServiceAccount<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub annotations: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// Secrets or image pull secrets that Terraform set on it.
    pub has_secrets: bool,
}

impl<'a> KubeServiceAccount<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        let metadata = metadata(v)?;
        let has_secrets =
            !v.array("secret")?.is_empty() || !v.array("image_pull_secret")?.is_empty();
        Ok(KubeServiceAccount {
            namespace: metadata.str("namespace")?.unwrap_or("default"),
            name: metadata.req_str("name")?,
            annotations: metadata.string_map("annotations")?,
            labels: metadata.string_map("labels")?,
            has_secrets,
        })
    }
}

/// The `metadata` block of a Kubernetes resource: a list of one object.
pub fn metadata<'a>(v: &Obj<'a>) -> Result<Obj<'a>, ReadError> {
    let blocks = v.required("metadata")?;
    match blocks.array()?.into_iter().next() {
        Some(block) => block.object(),
        None => Err(ReadError::new(&blocks.path, "is an empty list")),
    }
}

/// `azurerm_kubernetes_cluster`.
#[derive(Debug, Clone)]
pub struct KubernetesCluster<'a> {
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub resource_group: &'a str,
    pub subscription_id: Option<String>,
    pub oidc_issuer_url: Option<&'a str>,
    pub workload_identity_enabled: Option<bool>,
}

impl<'a> KubernetesCluster<'a> {
    pub fn read(v: &Obj<'a>) -> Result<Self, ReadError> {
        let id = v.str("id")?;
        Ok(KubernetesCluster {
            id,
            name: v.req_str("name")?,
            resource_group: v.req_str("resource_group_name")?,
            subscription_id: id.and_then(arm_id::subscription_of),
            oidc_issuer_url: v.str("oidc_issuer_url")?,
            workload_identity_enabled: v.bool("workload_identity_enabled")?,
        })
    }
}
