//! Thin views over resource JSON: type, id, meta.
//!
//! Owns: reading and setting the few elements Concord itself interprets on every resource.
//! Resources otherwise travel as `serde_json::Value`. Does not: validate (see [`crate::validate`]).

use serde_json::{Map, Value};

pub use crate::resource_types::RESOURCE_TYPES;

/// True when `name` is a concrete FHIR R4 resource type.
pub fn is_resource_type(name: &str) -> bool {
    RESOURCE_TYPES.binary_search(&name).is_ok()
}

/// The `resourceType` of a resource, if it has a string one.
pub fn resource_type(resource: &Value) -> Option<&str> {
    resource.get("resourceType").and_then(Value::as_str)
}

/// The logical id of a resource, if it has one.
pub fn id(resource: &Value) -> Option<&str> {
    resource.get("id").and_then(Value::as_str)
}

/// Sets `id`, placing it right after `resourceType` as the spec's examples do.
pub fn set_id(resource: &mut Value, id: &str) {
    if let Value::Object(map) = resource {
        map.insert("id".into(), Value::from(id));
        move_after_resource_type(map, "id");
    }
}

/// Sets `meta.versionId` and `meta.lastUpdated`, keeping every other meta element.
pub fn set_meta_version(resource: &mut Value, version_id: &str, last_updated: &str) {
    let Value::Object(map) = resource else { return };
    let meta = map
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("versionId".into(), Value::from(version_id));
        meta.insert("lastUpdated".into(), Value::from(last_updated));
    }
    move_after_resource_type(map, "meta");
    move_after_resource_type(map, "id");
}

fn move_after_resource_type(map: &mut Map<String, Value>, key: &str) {
    // serde_json's preserve_order keeps insertion order; moving the member in place keeps the
    // others where they are without rebuilding the map (every write does this twice).
    let Some(value) = map.shift_remove(key) else {
        return;
    };
    let at = map
        .keys()
        .position(|k| k == "resourceType")
        .map_or(map.len(), |i| i + 1);
    map.shift_insert(at, key.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn knows_the_r4_resource_types() {
        assert_eq!(RESOURCE_TYPES.len(), 146);
        assert!(is_resource_type("Patient"));
        assert!(!is_resource_type("patient"));
        assert!(!is_resource_type("Resource"));
    }

    #[test]
    fn meta_goes_after_id() {
        let mut p = json!({"resourceType": "Patient", "active": true, "meta": {"tag": []}});
        set_id(&mut p, "x");
        set_meta_version(&mut p, "1", "2020-01-01T00:00:00.000Z");
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "active"]);
        assert_eq!(p["meta"]["tag"], json!([]));
        // Wherever `resourceType` is, `id` and `meta` follow it and the rest keep their order.
        let mut p =
            json!({"active": true, "id": "y", "resourceType": "Patient", "gender": "other"});
        set_meta_version(&mut p, "2", "2020-01-01T00:00:00.000Z");
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["active", "resourceType", "id", "meta", "gender"]);
    }
}
