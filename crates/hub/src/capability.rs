//! The CapabilityStatement (<https://hl7.org/fhir/R4/capabilitystatement.html>), generated from
//! what this server really supports: every R4 resource type with the interactions the REST layer
//! routes, and the search parameters the registry can evaluate.

use concord_fhir::primitive::format_instant;
use concord_fhir::resource::RESOURCE_TYPES;
use concord_search::registry::params_for;
use serde_json::{Value, json};

use crate::Hub;

/// What a `phonetic` parameter compares, for integrators reading the CapabilityStatement (the
/// specification leaves the algorithm to the server).
const PHONETIC: &str = "Matches names by sound: the American Soundex code of the search value \
                        against those of each family and given name (and of each word of a name \
                        of several words).";

impl Hub {
    pub fn capability_statement(&self, base: &str, software_version: &str) -> Value {
        let resources: Vec<Value> = RESOURCE_TYPES
            .iter()
            .map(|resource_type| {
                let mut params: Vec<Value> = params_for(resource_type)
                    .filter(|p| p.is_supported())
                    .map(|p| {
                        let mut param = json!({ "name": p.code, "definition": p.url, "type": p.param_type.code() });
                        if p.is_phonetic() {
                            param["documentation"] = json!(PHONETIC);
                        }
                        param
                    })
                    .collect();
                params.dedup_by(|a, b| a["name"] == b["name"]);
                params.push(json!({ "name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token" }));
                params.push(json!({ "name": "_lastUpdated", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", "type": "date" }));
                let includes: Vec<String> = params_for(resource_type)
                    .filter(|p| p.is_supported() && p.param_type == concord_search::query::ParamType::Reference)
                    .map(|p| format!("{resource_type}:{}", p.code))
                    .collect();
                let interactions: Vec<Value> = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"]
                    .iter()
                    .map(|code| json!({ "code": code }))
                    .collect();
                let mut resource = json!({
                    "type": resource_type,
                    "profile": format!("http://hl7.org/fhir/StructureDefinition/{resource_type}"),
                    "interaction": interactions,
                    "versioning": "versioned-update",
                    "readHistory": true,
                    "updateCreate": true,
                    "conditionalCreate": true,
                    "conditionalRead": "not-supported",
                    "conditionalUpdate": true,
                    "conditionalDelete": "single",
                    "searchInclude": includes,
                    "searchRevInclude": ["*"],
                    "searchParam": params,
                });
                let operations = match *resource_type {
                    "Patient" => json!([
                        {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                        {"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"},
                        {"name": "ihe-pix", "definition": "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"},
                        {"name": "merge", "definition": "https://concord.health/fhir/OperationDefinition/Patient-merge"},
                        {"name": "unmerge", "definition": "https://concord.health/fhir/OperationDefinition/Patient-unmerge"}
                    ]),
                    // Concord's own operations on the master patient index (docs/identity.md).
                    "Person" => json!([
                        {"name": "merge", "definition": "https://concord.health/fhir/OperationDefinition/Person-merge"},
                        {"name": "unmerge", "definition": "https://concord.health/fhir/OperationDefinition/Person-unmerge"},
                        {"name": "locate", "definition": "https://concord.health/fhir/OperationDefinition/Person-locate"}
                    ]),
                    "Task" => json!([
                        {"name": "resolve-match", "definition": "https://concord.health/fhir/OperationDefinition/Task-resolve-match"}
                    ]),
                    _ => Value::Null,
                };
                if !operations.is_null() {
                    resource["operation"] = operations;
                }
                resource
            })
            .collect();
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": format_instant(self.clock.now_ms()),
            "publisher": "Concord",
            "kind": "instance",
            "software": { "name": "Concord", "version": software_version },
            "implementation": { "description": "Concord shared care record FHIR server", "url": base },
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "patchFormat": ["application/json-patch+json"],
            "rest": [{
                "mode": "server",
                "security": {
                    "cors": false,
                    "description": "Every endpoint but this CapabilityStatement and the health checks requires a bearer token."
                },
                "resource": resources,
                "interaction": [
                    { "code": "transaction" }, { "code": "batch" }, { "code": "search-system" }, { "code": "history-system" }
                ],
                "searchParam": [
                    { "name": "_id", "type": "token" },
                    { "name": "_lastUpdated", "type": "date" },
                    { "name": "_type", "type": "token" }
                ]
            }]
        })
    }
}
