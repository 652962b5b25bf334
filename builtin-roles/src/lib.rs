//! Azure built-in role definitions: names and GUIDs (the same in every tenant, checked against
//! Microsoft's built-in roles reference and Azure Verified Modules), and the permissions the
//! sandbox enforces for callers. wiform resolves role names offline with this table; roles not
//! listed are resolved by name against the directory.

/// A built-in Azure role definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinRole {
    pub name: &'static str,
    /// Role definition GUID.
    pub id: &'static str,
    pub description: &'static str,
    /// Control-plane actions (`*` wildcards as in Azure).
    pub actions: &'static [&'static str],
    pub not_actions: &'static [&'static str],
    pub data_actions: &'static [&'static str],
    pub not_data_actions: &'static [&'static str],
}

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        name: "Owner",
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Contributor",
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Reader",
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "User Access Administrator",
        id: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Role Based Access Control Administrator",
        id: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
        actions: &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Managed Identity Contributor",
        id: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        description: "Create, Read, Update, and Delete User Assigned Identity",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Managed Identity Operator",
        id: "f1a07417-d97a-45cb-824c-7a7467783830",
        description: "Read and Assign User Assigned Identity",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Key Vault Secrets User",
        id: "4633458b-17de-408a-b874-0445c86b69e6",
        description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Key Vault Secrets Officer",
        id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        description: "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Key Vault Crypto User",
        id: "12338af0-0e69-4776-bea7-57ae8d297424",
        description: "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/keys/read",
            "Microsoft.KeyVault/vaults/keys/update/action",
            "Microsoft.KeyVault/vaults/keys/backup/action",
            "Microsoft.KeyVault/vaults/keys/encrypt/action",
            "Microsoft.KeyVault/vaults/keys/decrypt/action",
            "Microsoft.KeyVault/vaults/keys/wrap/action",
            "Microsoft.KeyVault/vaults/keys/unwrap/action",
            "Microsoft.KeyVault/vaults/keys/sign/action",
            "Microsoft.KeyVault/vaults/keys/verify/action",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Key Vault Certificate User",
        id: "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
        description: "Read certificate contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/certificates/read",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "Microsoft.KeyVault/vaults/keys/read",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Key Vault Reader",
        id: "21090545-7ca7-4776-b22c-e363652d74d2",
        description: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Storage Blob Data Contributor",
        id: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        description: "Read, write, and delete Azure Storage containers and blobs. To learn which actions are required for a given data operation, see Permissions for calling data operations.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Storage Blob Data Reader",
        id: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        description: "Read and list Azure Storage containers and blobs. To learn which actions are required for a given data operation, see Permissions for calling data operations.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Storage Blob Data Owner",
        id: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        description: "Provides full access to Azure Storage blob containers and data, including assigning POSIX access control. To learn which actions are required for a given data operation, see Permissions for calling data operations.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Storage Queue Data Contributor",
        id: "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        description: "Read, write, and delete Azure Storage queues and queue messages. To learn which actions are required for a given data operation, see Permissions for calling data operations.",
        actions: &[
            "Microsoft.Storage/storageAccounts/queueServices/queues/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/write",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Storage Queue Data Reader",
        id: "19e7f393-937e-4f77-808e-94535e297925",
        description: "Read and list Azure Storage queues and queue messages. To learn which actions are required for a given data operation, see Permissions for calling data operations.",
        actions: &["Microsoft.Storage/storageAccounts/queueServices/queues/read"],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/queueServices/queues/messages/read"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Event Hubs Data Sender",
        id: "2b629674-e913-4c01-ae53-ef4638d8f975",
        description: "Allows send access to Azure Event Hubs resources.",
        actions: &["Microsoft.EventHub/*/eventhubs/read"],
        not_actions: &[],
        data_actions: &["Microsoft.EventHub/*/send/action"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Event Hubs Data Receiver",
        id: "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
        description: "Allows receive access to Azure Event Hubs resources.",
        actions: &["Microsoft.EventHub/*/eventhubs/consumergroups/read"],
        not_actions: &[],
        data_actions: &["Microsoft.EventHub/*/receive/action"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Event Hubs Data Owner",
        id: "f526a384-b230-433a-b45c-95f59c4a2dec",
        description: "Allows for full access to Azure Event Hubs resources.",
        actions: &["Microsoft.EventHub/*"],
        not_actions: &[],
        data_actions: &["Microsoft.EventHub/*"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Service Bus Data Sender",
        id: "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
        description: "Allows for send access to Azure Service Bus resources.",
        actions: &[
            "Microsoft.ServiceBus/*/queues/read",
            "Microsoft.ServiceBus/*/topics/read",
            "Microsoft.ServiceBus/*/topics/subscriptions/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ServiceBus/*/send/action"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Service Bus Data Receiver",
        id: "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
        description: "Allows for receive access to Azure Service Bus resources.",
        actions: &[
            "Microsoft.ServiceBus/*/queues/read",
            "Microsoft.ServiceBus/*/topics/read",
            "Microsoft.ServiceBus/*/topics/subscriptions/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ServiceBus/*/receive/action"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service RBAC Admin",
        id: "3498e952-d568-435e-9b2c-8d77e338d7f7",
        description: "Lets you manage all resources under cluster/namespace, except update or delete resource quotas and namespaces.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/operationresults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ContainerService/managedClusters/*"],
        not_data_actions: &[
            "Microsoft.ContainerService/managedClusters/resourcequotas/write",
            "Microsoft.ContainerService/managedClusters/resourcequotas/delete",
            "Microsoft.ContainerService/managedClusters/namespaces/write",
            "Microsoft.ContainerService/managedClusters/namespaces/delete",
        ],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service RBAC Cluster Admin",
        id: "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
        description: "Lets you manage all resources in the cluster.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/operationresults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.ContainerService/managedClusters/*"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service RBAC Reader",
        id: "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
        description: "Allows read-only access to see most objects in a namespace. It does not allow viewing roles or role bindings. This role does not allow viewing Secrets, since reading the contents of Secrets enables access to ServiceAccount credentials in the namespace, which would allow API access as any ServiceAccount in the namespace (a form of privilege escalation). Applying this role at cluster scope will give access across all namespaces.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/operationresults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerService/managedClusters/apps/controllerrevisions/read",
            "Microsoft.ContainerService/managedClusters/apps/daemonsets/read",
            "Microsoft.ContainerService/managedClusters/apps/deployments/read",
            "Microsoft.ContainerService/managedClusters/apps/replicasets/read",
            "Microsoft.ContainerService/managedClusters/apps/statefulsets/read",
            "Microsoft.ContainerService/managedClusters/autoscaling/horizontalpodautoscalers/read",
            "Microsoft.ContainerService/managedClusters/batch/cronjobs/read",
            "Microsoft.ContainerService/managedClusters/batch/jobs/read",
            "Microsoft.ContainerService/managedClusters/configmaps/read",
            "Microsoft.ContainerService/managedClusters/discovery.k8s.io/endpointslices/read",
            "Microsoft.ContainerService/managedClusters/endpoints/read",
            "Microsoft.ContainerService/managedClusters/events.k8s.io/events/read",
            "Microsoft.ContainerService/managedClusters/events/read",
            "Microsoft.ContainerService/managedClusters/extensions/daemonsets/read",
            "Microsoft.ContainerService/managedClusters/extensions/deployments/read",
            "Microsoft.ContainerService/managedClusters/extensions/ingresses/read",
            "Microsoft.ContainerService/managedClusters/extensions/networkpolicies/read",
            "Microsoft.ContainerService/managedClusters/extensions/replicasets/read",
            "Microsoft.ContainerService/managedClusters/limitranges/read",
            "Microsoft.ContainerService/managedClusters/metrics.k8s.io/pods/read",
            "Microsoft.ContainerService/managedClusters/metrics.k8s.io/nodes/read",
            "Microsoft.ContainerService/managedClusters/namespaces/read",
            "Microsoft.ContainerService/managedClusters/networking.k8s.io/ingresses/read",
            "Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/read",
            "Microsoft.ContainerService/managedClusters/persistentvolumeclaims/read",
            "Microsoft.ContainerService/managedClusters/pods/read",
            "Microsoft.ContainerService/managedClusters/policy/poddisruptionbudgets/read",
            "Microsoft.ContainerService/managedClusters/replicationcontrollers/read",
            "Microsoft.ContainerService/managedClusters/resourcequotas/read",
            "Microsoft.ContainerService/managedClusters/serviceaccounts/read",
            "Microsoft.ContainerService/managedClusters/services/read",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service RBAC Writer",
        id: "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
        description: "Allows read/write access to most objects in a namespace. This role does not allow viewing or modifying roles or role bindings. However, this role allows accessing Secrets and running Pods as any ServiceAccount in the namespace, so it can be used to gain the API access levels of any ServiceAccount in the namespace. Applying this role at cluster scope will give access across all namespaces.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/operationresults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.ContainerService/managedClusters/apps/controllerrevisions/read",
            "Microsoft.ContainerService/managedClusters/apps/daemonsets/*",
            "Microsoft.ContainerService/managedClusters/apps/deployments/*",
            "Microsoft.ContainerService/managedClusters/apps/replicasets/*",
            "Microsoft.ContainerService/managedClusters/apps/statefulsets/*",
            "Microsoft.ContainerService/managedClusters/autoscaling/horizontalpodautoscalers/*",
            "Microsoft.ContainerService/managedClusters/batch/cronjobs/*",
            "Microsoft.ContainerService/managedClusters/coordination.k8s.io/leases/read",
            "Microsoft.ContainerService/managedClusters/coordination.k8s.io/leases/write",
            "Microsoft.ContainerService/managedClusters/coordination.k8s.io/leases/delete",
            "Microsoft.ContainerService/managedClusters/discovery.k8s.io/endpointslices/read",
            "Microsoft.ContainerService/managedClusters/batch/jobs/*",
            "Microsoft.ContainerService/managedClusters/configmaps/*",
            "Microsoft.ContainerService/managedClusters/endpoints/*",
            "Microsoft.ContainerService/managedClusters/events.k8s.io/events/read",
            "Microsoft.ContainerService/managedClusters/events/*",
            "Microsoft.ContainerService/managedClusters/extensions/daemonsets/*",
            "Microsoft.ContainerService/managedClusters/extensions/deployments/*",
            "Microsoft.ContainerService/managedClusters/extensions/ingresses/*",
            "Microsoft.ContainerService/managedClusters/extensions/networkpolicies/*",
            "Microsoft.ContainerService/managedClusters/extensions/replicasets/*",
            "Microsoft.ContainerService/managedClusters/limitranges/read",
            "Microsoft.ContainerService/managedClusters/metrics.k8s.io/pods/read",
            "Microsoft.ContainerService/managedClusters/metrics.k8s.io/nodes/read",
            "Microsoft.ContainerService/managedClusters/namespaces/read",
            "Microsoft.ContainerService/managedClusters/networking.k8s.io/ingresses/*",
            "Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/*",
            "Microsoft.ContainerService/managedClusters/persistentvolumeclaims/*",
            "Microsoft.ContainerService/managedClusters/pods/*",
            "Microsoft.ContainerService/managedClusters/policy/poddisruptionbudgets/*",
            "Microsoft.ContainerService/managedClusters/replicationcontrollers/*",
            "Microsoft.ContainerService/managedClusters/resourcequotas/read",
            "Microsoft.ContainerService/managedClusters/secrets/*",
            "Microsoft.ContainerService/managedClusters/serviceaccounts/*",
            "Microsoft.ContainerService/managedClusters/services/*",
        ],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service Cluster User Role",
        id: "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
        description: "List cluster user credential action.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Azure Kubernetes Service Cluster Admin Role",
        id: "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
        description: "List cluster admin credential action.",
        actions: &[
            "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
            "Microsoft.ContainerService/managedClusters/accessProfiles/listCredential/action",
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerService/managedClusters/runcommand/action",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "AcrPull",
        id: "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        description: "Pull artifacts from a container registry.",
        actions: &["Microsoft.ContainerRegistry/registries/pull/read"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "AcrPush",
        id: "8311e382-0749-4cb8-b61a-304f252e45ec",
        description: "Push artifacts to or pull artifacts from a container registry.",
        actions: &[
            "Microsoft.ContainerRegistry/registries/pull/read",
            "Microsoft.ContainerRegistry/registries/push/write",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "Cosmos DB Account Reader Role",
        id: "fbdf93bf-df7d-467e-a4d2-9458aa1360c8",
        description: "Can read Azure Cosmos DB account data. See DocumentDB Account Contributor for managing Azure Cosmos DB accounts.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.DocumentDB/*/read",
            "Microsoft.DocumentDB/databaseAccounts/readonlykeys/action",
            "Microsoft.Insights/MetricDefinitions/read",
            "Microsoft.Insights/Metrics/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "App Configuration Data Reader",
        id: "516239f1-63e1-4d78-a4de-a74fb236a071",
        description: "Allows read access to App Configuration data.",
        actions: &[],
        not_actions: &[],
        data_actions: &["Microsoft.AppConfiguration/configurationStores/*/read"],
        not_data_actions: &[],
    },
    BuiltinRole {
        name: "App Configuration Data Owner",
        id: "5ae67dd6-50cb-40e7-96ff-dc2bfa4b606b",
        description: "Allows full access to App Configuration data.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.AppConfiguration/configurationStores/*/read",
            "Microsoft.AppConfiguration/configurationStores/*/write",
            "Microsoft.AppConfiguration/configurationStores/*/delete",
            "Microsoft.AppConfiguration/configurationStores/*/action",
        ],
        not_data_actions: &["Microsoft.AppConfiguration/configurationStores/useSasAuth/action"],
    },
];

/// Roles that can do (nearly) everything at their scope.
pub const BROAD_ROLES: &[&str] = &["Owner", "Contributor", "User Access Administrator"];

/// Looks a built-in role up by name, ignoring case as Azure does.
pub fn by_name(name: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES
        .iter()
        .find(|role| role.name.eq_ignore_ascii_case(name))
}

/// Looks a built-in role up by definition GUID.
pub fn by_id(id: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES
        .iter()
        .find(|role| role.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `8-4-4-4-12` hexadecimal digits, as role definition GUIDs are written.
    fn is_guid(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    }

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid(OWNER));
        assert!(!is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb63"));
        assert!(!is_guid("8e3af657a8ff-443c-a75c-2fe8c4bcb635"));
        assert!(!is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb63g"));
    }

    #[test]
    fn names_and_ids_are_unique_and_ids_are_guids() {
        for (i, a) in BUILTIN_ROLES.iter().enumerate() {
            assert!(is_guid(a.id), "{}", a.name);
            for b in &BUILTIN_ROLES[i + 1..] {
                assert_ne!(a.name.to_lowercase(), b.name.to_lowercase());
                assert_ne!(a.id, b.id);
            }
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(
            by_name("storage blob data contributor").map(|r| r.id),
            Some("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
        );
        assert_eq!(
            by_id("8E3AF657-A8FF-443C-A75C-2FE8C4BCB635").map(|r| r.name),
            Some("Owner")
        );
        for broad in BROAD_ROLES {
            assert!(by_name(broad).is_some());
        }
        for id in [OWNER, CONTRIBUTOR, READER, USER_ACCESS_ADMINISTRATOR] {
            assert!(by_id(id).is_some());
        }
    }
}
