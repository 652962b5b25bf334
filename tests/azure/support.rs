//! Test helpers: an in-process sandbox, an Azure client that talks to it as it would to Azure
//! (HTTPS, the sandbox's CA, a client-secret credential through azure_identity), and the
//! sandbox's request counters.

#![allow(dead_code)] // each test module uses a different part

use std::sync::{Arc, Mutex};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions as CoreOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use wiform::providers::azure::client::{
    AzureClient, ClientOptions, Event, EventSink, RetryPolicy, http_client,
};
use wiform::providers::azure::cloud::Endpoints;
use wiform_sandbox::log::Entry;
use wiform_sandbox::seed::{Seed, SeedCluster, SeedGroup};
use wiform_sandbox::state::StoreError;
use wiform_sandbox::state::{
    ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, READER_CLIENT_ID,
};
use wiform_sandbox::{Faults, Options, Running};

pub const SUB: &str = DEFAULT_SUBSCRIPTION;
pub const TENANT: &str = DEFAULT_TENANT;

pub struct Sandbox {
    pub running: Running,
    pub endpoints: Endpoints,
    /// Events the admin client reported.
    pub events: Arc<Mutex<Vec<Event>>>,
    /// A client signed in as the sandbox's Owner.
    pub admin: AzureClient,
}

/// A sandbox with small pages (5 items) so that lists page, and faults off.
pub async fn sandbox() -> Sandbox {
    sandbox_with(Options {
        page_size: 5,
        ..Options::default()
    })
    .await
}

pub async fn sandbox_with_faults(faults: Faults) -> Sandbox {
    sandbox_with(Options {
        page_size: 5,
        faults,
        ..Options::default()
    })
    .await
}

pub async fn sandbox_with(options: Options) -> Sandbox {
    let running = wiform_sandbox::start(options)
        .await
        .expect("sandbox starts");
    let endpoints = Endpoints::sandbox(running.base_url(), running.ca_pem()).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |e: &Event| sink_events.lock().unwrap().push(e.clone()));
    let admin = client_as(&running, &endpoints, ADMIN_CLIENT_ID, test_options()).with_events(sink);
    Sandbox {
        running,
        endpoints,
        events,
        admin,
    }
}

/// Fast retries and short waits, so that fault tests take seconds.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy::fast(),
        ..ClientOptions::default()
    }
}

pub fn secret_of(running: &Running, client_id: &str) -> String {
    running.app.store.read(|s| {
        s.clients
            .iter()
            .find(|c| c.client_id == client_id)
            .expect("known client")
            .secret
            .clone()
    })
}

/// A client-secret credential for a sandbox client, through azure_identity.
pub fn credential_for(
    running: &Running,
    endpoints: &Endpoints,
    client_id: &str,
) -> Arc<dyn TokenCredential> {
    let http = http_client(endpoints, std::time::Duration::from_secs(20)).unwrap();
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = endpoints.authority.to_string();
    let options = ClientSecretCredentialOptions {
        client_options: CoreOptions {
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            transport: Some(Transport::new(Arc::new(http))),
            ..Default::default()
        },
    };
    ClientSecretCredential::new(
        TENANT,
        client_id.to_string(),
        Secret::new(secret_of(running, client_id)),
        Some(options),
    )
    .unwrap()
}

pub fn client_as(
    running: &Running,
    endpoints: &Endpoints,
    client_id: &str,
    options: ClientOptions,
) -> AzureClient {
    AzureClient::new(
        endpoints.clone(),
        credential_for(running, endpoints, client_id),
        options,
    )
    .unwrap()
}

impl Sandbox {
    /// A client signed in as the sandbox's Reader.
    pub fn reader(&self) -> AzureClient {
        client_as(
            &self.running,
            &self.endpoints,
            READER_CLIENT_ID,
            test_options(),
        )
    }

    pub fn set_faults(&self, faults: Faults) {
        self.running.app.set_faults(faults);
    }

    /// The sandbox's request log since the last [`Sandbox::clear_log`].
    pub fn requests(&self) -> Vec<Entry> {
        self.running.app.log.entries()
    }

    pub fn clear_log(&self) {
        self.running.app.log.clear();
    }

    /// Requests to ARM and Graph (not the token endpoint, not the admin API).
    pub fn api_requests(&self) -> Vec<Entry> {
        self.requests()
            .into_iter()
            .filter(|r| matches!(r.api, "arm" | "graph"))
            .collect()
    }

    /// How many ARM/Graph requests answered `status`.
    pub fn count_status(&self, status: u16) -> usize {
        self.api_requests()
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// Objects that exist before wiform runs, as `wiform sandbox seed` makes them: resource
    /// groups, and settled AKS clusters `(resource group, name, OIDC issuer, workload
    /// identity)` whose groups are made too.
    pub fn seed(&self, groups: &[&str], clusters: &[(&str, &str, bool, bool)]) {
        let mut all: Vec<&str> = groups.to_vec();
        for (rg, ..) in clusters {
            if !all.contains(rg) {
                all.push(rg);
            }
        }
        let seed = Seed {
            resource_groups: all
                .iter()
                .map(|g| SeedGroup {
                    name: g.to_string(),
                    location: "westeurope".into(),
                    tags: Default::default(),
                })
                .collect(),
            managed_clusters: clusters
                .iter()
                .map(|(rg, name, oidc, wi)| SeedCluster {
                    resource_group: rg.to_string(),
                    name: name.to_string(),
                    location: "westeurope".into(),
                    oidc_issuer: *oidc,
                    workload_identity: *wi,
                })
                .collect(),
            ..Seed::default()
        };
        let app = &self.running.app;
        app.store
            .write(|s| Ok::<_, StoreError>(wiform_sandbox::seed::apply(s, &seed, &app.base_url)))
            .unwrap()
            .unwrap();
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}
