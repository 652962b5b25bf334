//! What clients did: every request, and counters per API and operation, for tests and
//! benchmarks (`GET /_sandbox/requests`, `GET /_sandbox/counters`, and `requests.jsonl`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub request_id: String,
    pub api: &'static str,
    pub method: String,
    pub path: String,
    /// e.g. `PUT userAssignedIdentities`, `POST token`.
    pub operation: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub total: u64,
    pub by_api: BTreeMap<String, u64>,
    pub by_operation: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    pub by_error: BTreeMap<String, u64>,
}

pub struct RequestLog {
    entries: Mutex<Vec<Entry>>,
    counters: Mutex<Counters>,
    file: Option<PathBuf>,
}

/// At most this many entries are kept in memory (the file keeps all).
const KEEP: usize = 100_000;

impl RequestLog {
    pub fn new(file: Option<PathBuf>) -> Self {
        RequestLog {
            entries: Mutex::new(Vec::new()),
            counters: Mutex::new(Counters::default()),
            file,
        }
    }

    pub fn record(&self, entry: Entry) {
        {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            c.total += 1;
            *c.by_api.entry(entry.api.to_string()).or_default() += 1;
            *c.by_operation.entry(entry.operation.clone()).or_default() += 1;
            *c.by_status.entry(entry.status).or_default() += 1;
            if let Some(code) = &entry.error_code {
                *c.by_error.entry(code.clone()).or_default() += 1;
            }
        }
        if let Some(path) = &self.file
            && let Ok(line) = serde_json::to_string(&entry)
            && let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEEP {
            entries.drain(..KEEP / 2);
        }
        entries.push(entry);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn counters(&self) -> Counters {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self.counters.lock().unwrap_or_else(|p| p.into_inner()) = Counters::default();
    }
}
