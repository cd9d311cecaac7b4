//! Golden persons: which source records are one person, and how steward decisions change that.
//!
//! Owns the link set of a golden person (FHIR `Person.link` with its `assurance`), merging two
//! persons and undoing that merge exactly, reading and writing the FHIR Person shape the hub
//! stores, and spotting linked records that disagree on demographics. Does not match (the index
//! does), store anything, or know who decided: the hub records decisions as Provenance.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::demographics::Demographics;

/// The tag on every Person the index manages, so clients' own Person resources are left alone.
pub const GOLDEN_TAG_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/mpi";
pub const GOLDEN_TAG_CODE: &str = "golden-person";
/// The extension that names demographic fields on which a person's linked records disagree.
pub const CONFLICT_EXTENSION: &str =
    "https://concord.health/fhir/StructureDefinition/demographic-conflict";

/// FHIR `IdentityAssuranceLevel`: how sure the index is that a record belongs to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assurance {
    Level1,
    Level2,
    Level3,
    Level4,
}

impl Assurance {
    pub fn code(self) -> &'static str {
        match self {
            Self::Level1 => "level1",
            Self::Level2 => "level2",
            Self::Level3 => "level3",
            Self::Level4 => "level4",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "level1" => Some(Self::Level1),
            "level2" => Some(Self::Level2),
            "level3" => Some(Self::Level3),
            "level4" => Some(Self::Level4),
            _ => None,
        }
    }
}

/// One source record (a Patient id at the hub) linked to a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordLink {
    pub record: String,
    pub assurance: Assurance,
}

/// A golden person as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenPerson {
    pub id: String,
    /// False once merged into another person.
    pub active: bool,
    /// Linked records, kept sorted by record id so the stored form is stable.
    pub links: Vec<RecordLink>,
    /// The person this one was merged into.
    pub replaced_by: Option<String>,
    /// Demographic fields on which the linked records disagree.
    pub conflicts: Vec<String>,
}

/// What a merge moved, kept (as Provenance) so that it can be undone exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonMerge {
    pub survivor: String,
    pub merged: String,
    pub moved: Vec<RecordLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error("a person cannot be merged into itself")]
    SamePerson,
    #[error("Person/{0} was already merged into another person")]
    Inactive(String),
    #[error("Person/{0} was not merged into Person/{1}")]
    NotMerged(String, String),
    #[error("Record {0} has since been moved away from Person/{1}; unlink it first")]
    Moved(String, String),
}

impl GoldenPerson {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            active: true,
            links: Vec::new(),
            replaced_by: None,
            conflicts: Vec::new(),
        }
    }

    pub fn records(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(|l| l.record.as_str())
    }

    pub fn holds(&self, record: &str) -> bool {
        self.links.iter().any(|l| l.record == record)
    }

    /// Links a record (replacing the assurance if it is already linked).
    pub fn link(&mut self, record: &str, assurance: Assurance) {
        self.links.retain(|l| l.record != record);
        self.links.push(RecordLink {
            record: record.to_string(),
            assurance,
        });
        self.links.sort();
    }

    /// Removes a record's link; true when it was there.
    pub fn unlink(&mut self, record: &str) -> bool {
        let before = self.links.len();
        self.links.retain(|l| l.record != record);
        before != self.links.len()
    }

    /// Reads a Person the index wrote; `None` for a Person without the golden tag.
    pub fn from_fhir(person: &Value) -> Option<Self> {
        let tagged = person
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .is_some_and(|tags| {
                tags.iter().any(|t| {
                    t.get("system").and_then(Value::as_str) == Some(GOLDEN_TAG_SYSTEM)
                        && t.get("code").and_then(Value::as_str) == Some(GOLDEN_TAG_CODE)
                })
            });
        if !tagged {
            return None;
        }
        let mut p = Self::new(person.get("id")?.as_str()?);
        p.active = person
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        for link in person
            .get("link")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(reference) = link.pointer("/target/reference").and_then(Value::as_str) else {
                continue;
            };
            if let Some(record) = reference.strip_prefix("Patient/") {
                let assurance = link
                    .get("assurance")
                    .and_then(Value::as_str)
                    .and_then(Assurance::parse)
                    .unwrap_or(Assurance::Level1);
                p.link(record, assurance);
            } else if let Some(other) = reference.strip_prefix("Person/") {
                p.replaced_by = Some(other.to_string());
            }
        }
        p.conflicts = person
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("url").and_then(Value::as_str) == Some(CONFLICT_EXTENSION))
            .filter_map(|e| e.get("valueCode").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Some(p)
    }

    /// The FHIR Person the hub stores. `shown` gives the name, gender and birth date to show
    /// (the hub passes its most recently updated linked Patient).
    pub fn to_fhir(&self, shown: Option<&Value>) -> Value {
        let mut links: Vec<Value> = self
            .links
            .iter()
            .map(|l| json!({"target": {"reference": format!("Patient/{}", l.record)}, "assurance": l.assurance.code()}))
            .collect();
        if let Some(survivor) = &self.replaced_by {
            links.push(json!({"target": {"reference": format!("Person/{survivor}")}, "assurance": "level4"}));
        }
        let mut person = json!({
            "resourceType": "Person",
            "id": self.id,
            "meta": {"tag": [{"system": GOLDEN_TAG_SYSTEM, "code": GOLDEN_TAG_CODE, "display": "Golden person of the master patient index"}]},
            "active": self.active,
        });
        if !self.conflicts.is_empty() {
            person["extension"] = self
                .conflicts
                .iter()
                .map(|c| json!({"url": CONFLICT_EXTENSION, "valueCode": c}))
                .collect();
        }
        if let Some(shown) = shown {
            for field in ["name", "gender", "birthDate", "telecom", "address"] {
                if let Some(v) = shown.get(field) {
                    person[field] = v.clone();
                }
            }
        }
        if !links.is_empty() {
            person["link"] = Value::Array(links);
        }
        person
    }
}

/// Moves every record of `merged` to `survivor` and retires `merged`, pointing it at the survivor.
pub fn merge(
    survivor: &mut GoldenPerson,
    merged: &mut GoldenPerson,
) -> Result<PersonMerge, PersonError> {
    if survivor.id == merged.id {
        return Err(PersonError::SamePerson);
    }
    for p in [&*survivor, &*merged] {
        if !p.active {
            return Err(PersonError::Inactive(p.id.clone()));
        }
    }
    let moved = std::mem::take(&mut merged.links);
    for link in &moved {
        survivor.link(&link.record, link.assurance);
    }
    merged.active = false;
    merged.replaced_by = Some(survivor.id.clone());
    Ok(PersonMerge {
        survivor: survivor.id.clone(),
        merged: merged.id.clone(),
        moved,
    })
}

/// Undoes `merge`: the moved records go back with their old assurance and the merged person
/// becomes active again. Records linked to the survivor since the merge stay with it.
pub fn unmerge(
    survivor: &mut GoldenPerson,
    merged: &mut GoldenPerson,
    merge: &PersonMerge,
) -> Result<(), PersonError> {
    if merge.survivor != survivor.id
        || merge.merged != merged.id
        || merged.replaced_by.as_deref() != Some(survivor.id.as_str())
    {
        return Err(PersonError::NotMerged(
            merged.id.clone(),
            survivor.id.clone(),
        ));
    }
    if let Some(gone) = merge.moved.iter().find(|l| !survivor.holds(&l.record)) {
        return Err(PersonError::Moved(gone.record.clone(), survivor.id.clone()));
    }
    for link in &merge.moved {
        survivor.unlink(&link.record);
        merged.link(&link.record, link.assurance);
    }
    merged.active = true;
    merged.replaced_by = None;
    Ok(())
}

/// The demographic fields on which linked records disagree, for the portal's warning. Only
/// fields that the records have count, so a record without a phone number is no conflict. Linear
/// in the number of records: a field disagrees when its records hold more than one distinct value.
pub fn disagreements<'a>(records: impl IntoIterator<Item = &'a Demographics>) -> Vec<String> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let mut seen: [(&'static str, BTreeSet<String>); 6] = [
        ("birth-date", BTreeSet::new()),
        ("family-name", BTreeSet::new()),
        ("gender", BTreeSet::new()),
        ("given-name", BTreeSet::new()),
        ("nhs-number", BTreeSet::new()),
        ("postcode", BTreeSet::new()),
    ];
    for r in records {
        let values = [
            r.birth_date.map(|d| format!("{d:?}")),
            r.family_name.as_deref().map(fold),
            r.sex.map(|s| format!("{s:?}")),
            r.given_names.first().map(|g| fold(g)),
            r.nhs_number.map(|n| n.digits()),
            r.postcode.as_deref().map(fold),
        ];
        for ((_, set), value) in seen.iter_mut().zip(values) {
            if let Some(v) = value
                && set.len() < 2
            {
                set.insert(v);
            }
        }
    }
    seen.into_iter()
        .filter(|(_, set)| set.len() > 1)
        .map(|(field, _)| field.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demographics::BirthDate;
    use proptest::prelude::*;

    fn person(id: &str, records: &[(&str, Assurance)]) -> GoldenPerson {
        let mut p = GoldenPerson::new(id);
        for (r, a) in records {
            p.link(r, *a);
        }
        p
    }

    #[test]
    fn fhir_round_trip() {
        let mut p = person("p1", &[("b", Assurance::Level3), ("a", Assurance::Level4)]);
        p.conflicts = vec!["birth-date".into()];
        let json = p.to_fhir(None);
        assert_eq!(json["link"][0]["target"]["reference"], "Patient/a");
        assert_eq!(GoldenPerson::from_fhir(&json), Some(p));
        let mut untagged = json.clone();
        untagged["meta"] = json!({});
        assert_eq!(GoldenPerson::from_fhir(&untagged), None);
    }

    #[test]
    fn merge_rules() {
        let mut a = person("a", &[("r1", Assurance::Level4)]);
        let mut b = person("b", &[("r2", Assurance::Level3)]);
        let m = merge(&mut a, &mut b).unwrap();
        assert_eq!(a.records().collect::<Vec<_>>(), ["r1", "r2"]);
        assert!(!b.active);
        assert_eq!(
            GoldenPerson::from_fhir(&b.to_fhir(None))
                .unwrap()
                .replaced_by
                .as_deref(),
            Some("a")
        );
        let mut c = person("c", &[]);
        assert_eq!(
            merge(&mut c, &mut b),
            Err(PersonError::Inactive("b".into()))
        );
        let mut a2 = a.clone();
        assert_eq!(merge(&mut a, &mut a2), Err(PersonError::SamePerson));
        // A record moved elsewhere after the merge blocks the unmerge rather than being stolen back.
        let mut a3 = a.clone();
        a3.unlink("r2");
        assert_eq!(
            unmerge(&mut a3, &mut b, &m),
            Err(PersonError::Moved("r2".into(), "a".into()))
        );
        unmerge(&mut a, &mut b, &m).unwrap();
        assert_eq!(b, person("b", &[("r2", Assurance::Level3)]));
    }

    #[test]
    fn conflicting_demographics_are_named() {
        let a = Demographics {
            family_name: Some("O'Brien".into()),
            birth_date: BirthDate::parse("1970-01-02"),
            ..Default::default()
        };
        let b = Demographics {
            family_name: Some("OBRIEN".into()),
            birth_date: BirthDate::parse("1970-02-01"),
            phone: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(disagreements([&a, &b]), ["birth-date"]);
        assert!(disagreements([&a]).is_empty());
    }

    fn assurance() -> impl Strategy<Value = Assurance> {
        prop_oneof![
            Just(Assurance::Level1),
            Just(Assurance::Level2),
            Just(Assurance::Level3),
            Just(Assurance::Level4)
        ]
    }

    proptest! {
        #[test]
        fn merge_then_unmerge_restores_the_links(
            left in proptest::collection::btree_map("[a-f][0-9]", assurance(), 0..6),
            right in proptest::collection::btree_map("[g-m][0-9]", assurance(), 0..6),
        ) {
            let mut a = GoldenPerson::new("a");
            left.iter().for_each(|(r, s)| a.link(r, *s));
            let mut b = GoldenPerson::new("b");
            right.iter().for_each(|(r, s)| b.link(r, *s));
            let (before_a, before_b) = (a.clone(), b.clone());
            let m = merge(&mut a, &mut b).unwrap();
            prop_assert_eq!(a.links.len(), left.len() + right.len());
            prop_assert!(b.links.is_empty());
            unmerge(&mut a, &mut b, &m).unwrap();
            prop_assert_eq!(a, before_a);
            prop_assert_eq!(b, before_b);
        }
    }
}
