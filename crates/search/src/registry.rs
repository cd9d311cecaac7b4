//! The R4 SearchParameter registry: which parameters each resource type has, and the Patient
//! compartment.
//!
//! Owns: lookups over the generated tables in `registry_generated.rs` (written by
//! `tools/gen_search_registry.py`; never edited by hand). Does not: evaluate expressions (see
//! [`crate::fhirpath`]) or know about custom SearchParameters, which R4 servers may add at run time
//! but Concord does not support.

use crate::query::ParamType;

#[rustfmt::skip]
#[path = "registry_generated.rs"]
mod generated;

/// One R4 SearchParameter as it applies to one base type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParamDef {
    /// The base this entry is for (`Patient`, or `Resource`/`DomainResource` for the common ones).
    pub base: &'static str,
    pub code: &'static str,
    pub url: &'static str,
    pub param_type: ParamType,
    /// The FHIRPath expression reduced to the union members rooted at `base`. `None` for
    /// parameters the specification defines without one (`_text`, `_content`, `_query`, `_filter`),
    /// which Concord knows but does not support.
    pub expression: Option<&'static str>,
    /// Reference parameters: the resource types the reference may point at, sorted.
    pub targets: &'static [&'static str],
    /// Composite parameters: the components, in definition order.
    pub components: &'static [ComponentDef],
    /// `xpathUsage`: `normal`, `phonetic`, `nearby`, ...
    pub xpath_usage: &'static str,
}

/// One component of a composite parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentDef {
    /// The canonical URL of the component's own SearchParameter.
    pub definition: &'static str,
    /// That parameter's code.
    pub code: &'static str,
    /// That parameter's type, which decides how the component value is parsed and indexed.
    pub param_type: ParamType,
    /// The expression, relative to each item the composite's expression selects.
    pub expression: &'static str,
}

impl SearchParamDef {
    /// True when Concord can evaluate this parameter (it has an expression and is not `special`).
    pub fn is_supported(&self) -> bool {
        self.expression.is_some() && self.param_type != ParamType::Special
    }

    /// True for the string parameters that match by sound (`Patient.phonetic` and the like):
    /// indexed and searched as Soundex codes, not as the strings themselves.
    pub fn is_phonetic(&self) -> bool {
        self.xpath_usage == "phonetic"
    }
}

/// Every parameter of every base, sorted by (base, code).
pub fn all() -> &'static [SearchParamDef] {
    generated::PARAMS
}

fn for_base(base: &str) -> &'static [SearchParamDef] {
    let params = generated::PARAMS;
    let start = params.partition_point(|p| p.base < base);
    let end = start + params[start..].partition_point(|p| p.base == base);
    &params[start..end]
}

fn find(base: &str, code: &str) -> Option<&'static SearchParamDef> {
    let params = for_base(base);
    params
        .binary_search_by(|p| p.code.cmp(code))
        .ok()
        .map(|i| &params[i])
}

/// The parameter `code` of `resource_type`, including the `Resource` and `DomainResource` ones.
/// `resource_type` may itself be `Resource` (system search), which sees only the common ones.
pub fn lookup(resource_type: &str, code: &str) -> Option<&'static SearchParamDef> {
    find(resource_type, code)
        .or_else(|| find("Resource", code))
        .or_else(|| {
            // Bundle, Binary and Parameters are not DomainResources, so `_text` does not apply to them.
            if resource_type != "Resource"
                && !matches!(resource_type, "Bundle" | "Binary" | "Parameters")
            {
                find("DomainResource", code)
            } else {
                None
            }
        })
}

/// Every parameter of `resource_type`: its own, then the `Resource` and `DomainResource` ones.
pub fn params_for(resource_type: &str) -> impl Iterator<Item = &'static SearchParamDef> {
    let common = if resource_type == "Resource"
        || matches!(resource_type, "Bundle" | "Binary" | "Parameters")
    {
        &[][..]
    } else {
        for_base("DomainResource")
    };
    let own = if resource_type == "Resource" || resource_type == "DomainResource" {
        &[][..]
    } else {
        for_base(resource_type)
    };
    own.iter().chain(for_base("Resource")).chain(common)
}

/// The parameters that put a resource of `resource_type` into a Patient's compartment (empty when
/// the type is not in the compartment).
pub fn patient_compartment_params(resource_type: &str) -> &'static [&'static str] {
    let table = generated::PATIENT_COMPARTMENT;
    table
        .binary_search_by(|(t, _)| (*t).cmp(resource_type))
        .map(|i| table[i].1)
        .unwrap_or(&[])
}

/// The resource types in the Patient compartment, sorted.
pub fn compartment_types() -> impl Iterator<Item = &'static str> {
    generated::PATIENT_COMPARTMENT.iter().map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for w in all().windows(2) {
            assert!(
                (w[0].base, w[0].code) < (w[1].base, w[1].code),
                "{} {}",
                w[1].base,
                w[1].code
            );
        }
        for w in generated::PATIENT_COMPARTMENT.windows(2) {
            assert!(w[0].0 < w[1].0);
        }
    }

    #[test]
    fn looks_up_own_and_common_parameters() {
        let name = lookup("Patient", "name").unwrap();
        assert_eq!(name.param_type, ParamType::String);
        assert_eq!(name.expression, Some("Patient.name"));
        let code = lookup("Observation", "code").unwrap();
        assert_eq!(code.expression, Some("Observation.code"));
        assert_eq!(
            lookup("Observation", "_tag").unwrap().expression,
            Some("Resource.meta.tag")
        );
        assert_eq!(lookup("Patient", "_text").unwrap().base, "DomainResource");
        assert!(!lookup("Patient", "_text").unwrap().is_supported());
        assert!(lookup("Bundle", "_text").is_none());
        assert!(lookup("Patient", "nonsense").is_none());
        assert_eq!(
            lookup("Observation", "subject").unwrap().targets,
            ["Device", "Group", "Location", "Patient"]
        );
        let combo = lookup("Observation", "code-value-quantity").unwrap();
        assert_eq!(combo.components.len(), 2);
        assert_eq!(combo.components[1].param_type, ParamType::Quantity);
        assert!(params_for("Patient").any(|p| p.code == "_security"));
        assert!(params_for("Patient").any(|p| p.code == "birthdate"));
    }

    #[test]
    fn union_expressions_are_split_per_base() {
        let med = lookup("MedicationRequest", "code").unwrap();
        assert_eq!(
            med.expression,
            Some("(MedicationRequest.medication as CodeableConcept)")
        );
        let phone = lookup("Practitioner", "phone").unwrap();
        assert_eq!(
            phone.expression,
            Some("Practitioner.telecom.where(system='phone')")
        );
        let date = lookup("RiskAssessment", "date").unwrap();
        assert_eq!(
            date.expression,
            Some("(RiskAssessment.occurrence as dateTime)")
        );
    }

    #[test]
    fn knows_the_patient_compartment() {
        assert_eq!(
            patient_compartment_params("Observation"),
            ["subject", "performer"]
        );
        assert!(patient_compartment_params("Organization").is_empty());
        assert!(compartment_types().any(|t| t == "Encounter"));
    }
}
