//! Helpers shared by the hub's integration tests: a hub over a real SQLite store on a tempdir, and
//! JSON comparison that reports where two resources differ.

#![allow(dead_code)]

use std::sync::Arc;

use concord_fhir::RequestContext;
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use serde_json::Value;

/// A hub over a fresh SQLite store; keep the `TempDir` alive as long as the hub.
pub fn hub() -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions {
        // The test checks behaviour, not durability across power loss.
        synchronous: Synchronous::Normal,
        ..SqliteOptions::new(dir.path().join("concord.db"))
    };
    let store = SqliteStore::open(&options).expect("store opens");
    let hub = Hub::new(Arc::new(store), Arc::new(SystemClock), HubConfig::default()).expect("hub");
    (hub, dir)
}

/// [`hub`] with the store as its HL7 v2 message log too, as a node that takes feeds runs.
pub fn feed_hub() -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::new(dir.path().join("concord.db"))
    };
    let store = Arc::new(SqliteStore::open(&options).expect("store opens"));
    let hub = Hub::new(store.clone(), Arc::new(SystemClock), HubConfig::default())
        .expect("hub")
        .with_message_log(store);
    (hub, dir)
}

pub fn ctx() -> RequestContext {
    RequestContext::system("test", "req")
}

/// The first place where `expected` and `actual` differ, as `path: expected != actual`; `None`
/// when they are equal (object key order is ignored, numbers compare by their exact text).
pub fn first_difference(expected: &Value, actual: &Value) -> Option<String> {
    diff_at("", expected, actual)
}

fn diff_at(path: &str, expected: &Value, actual: &Value) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => {
                        if let Some(d) = diff_at(&p, ev, av) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{p}: missing from the stored resource")),
                }
            }
            a.keys()
                .find(|k| !e.contains_key(*k))
                .map(|k| format!("{path}.{k}: added by the server: {}", a[k]))
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Some(format!(
                    "{path}: {} items expected, {} stored",
                    e.len(),
                    a.len()
                ));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .find_map(|(i, (ev, av))| diff_at(&format!("{path}[{i}]"), ev, av))
        }
        _ if expected == actual => None,
        _ => Some(format!("{path}: expected {expected}, stored {actual}")),
    }
}

/// Removes `meta.versionId` and `meta.lastUpdated` (which the server owns), and `meta` itself when
/// nothing else is left in it.
pub fn strip_server_meta(resource: &mut Value) {
    let Some(map) = resource.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(meta)) = map.get_mut("meta") {
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        if meta.is_empty() {
            map.shift_remove("meta");
        }
    }
}
