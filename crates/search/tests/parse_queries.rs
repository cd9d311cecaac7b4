//! Data-driven tests of search parsing: each query is parsed and rendered, and the whole table is
//! one snapshot, so a change in behaviour shows as a readable diff.

mod common;

use common::render_clause;
use concord_fhir::ErrorKind;
use concord_search::parse::{ParsedSearch, parse_search};
use concord_search::query::{
    Clause, Modifier, ParamClause, ParamRef, Prefix, SearchValue, TokenSystem,
};
use proptest::prelude::*;

/// Parses `Type?query` (or `?query` for a system search); the query is already percent-decoded.
fn run(url: &str) -> Result<ParsedSearch, concord_fhir::Error> {
    let (t, q) = url.split_once('?').unwrap_or((url, ""));
    let params: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_string(), v.to_string())
        })
        .collect();
    parse_search((!t.is_empty()).then_some(t), &params)
}

fn render(url: &str) -> String {
    let mut s = format!("{url}\n");
    match run(url) {
        Err(e) => s.push_str(&format!(
            "  ERROR {:?}: {}\n",
            e.kind,
            e.issues
                .iter()
                .map(|i| i.diagnostics.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Ok(p) => {
            for c in &p.query.clauses {
                s.push_str(&format!("  AND {}\n", render_clause(c)));
            }
            let q = &p.query;
            if !q.types.is_empty() {
                s.push_str(&format!("  types {:?}\n", q.types));
            }
            if !q.sort.is_empty() {
                s.push_str(&format!("  sort {:?}\n", q.sort));
            }
            if q.count.is_some() || q.offset != 0 || q.snapshot.is_some() {
                s.push_str(&format!(
                    "  page count={:?} offset={} snapshot={:?}\n",
                    q.count, q.offset, q.snapshot
                ));
            }
            if q.summary.is_some() || q.total.is_some() || !q.elements.is_empty() {
                s.push_str(&format!(
                    "  summary={:?} total={:?} elements={:?}\n",
                    q.summary, q.total, q.elements
                ));
            }
            for i in &q.includes {
                s.push_str(&format!("  include {i:?}\n"));
            }
            for i in &q.revincludes {
                s.push_str(&format!("  revinclude {i:?}\n"));
            }
            if !p.unknown.is_empty() {
                s.push_str(&format!("  unknown {:?}\n", p.unknown));
            }
            for i in &p.issues {
                s.push_str(&format!(
                    "  {} {}: {}\n",
                    i.severity.code(),
                    i.code.code(),
                    i.diagnostics
                ));
            }
        }
    }
    s
}

const QUERIES: &[&str] = &[
    // string
    "Patient?name=Chalmers",
    "Patient?name=Émile,ZOLA&name:exact=Jim",
    "Patient?family:contains=alm",
    "Patient?name:missing=true",
    "Patient?name:missing=maybe",
    "Patient?name:below=x",
    // token
    "Patient?gender=male",
    "Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
    "Patient?identifier=|12345",
    "Patient?identifier=urn:oid:1.2.3|",
    "Patient?identifier=|",
    "Patient?identifier=a|b|c",
    "Patient?gender:not=male",
    "Observation?code:text=body weight",
    "Observation?code:in=http://vs",
    "Observation?code:exact=x",
    // escaping
    "Patient?name=a\\,b,c",
    "Patient?identifier=sys\\|tem|va\\$lue\\\\",
    // date
    "Patient?birthdate=1974-12-25",
    "Patient?birthdate=ge2020-01&birthdate=lt2021",
    "Observation?date=gt2015-02-07T13:28Z",
    "Observation?date=sa2015-02-07T13:28:17-05:00",
    "Patient?birthdate=xx2020",
    "Patient?birthdate=2020-13-01",
    "Patient?_lastUpdated=gt2020-01-01T00:00:00Z",
    // number and quantity
    "RiskAssessment?probability=gt0.8",
    "RiskAssessment?probability=100",
    "RiskAssessment?probability=abc",
    "Observation?value-quantity=5.4|http://unitsofmeasure.org|mg",
    "Observation?value-quantity=le5.4||mg",
    "Observation?value-quantity=ap5.40e-3",
    "Observation?value-quantity=5.4|x",
    "Observation?value-quantity=mg",
    // reference
    "Observation?subject=Patient/123",
    "Observation?subject=123",
    "Observation?subject:Patient=123",
    "Observation?subject:Medication=123",
    "Observation?subject=http://example.org/fhir/Patient/123",
    "Observation?subject:identifier=http://acme.org|42",
    "QuestionnaireResponse?questionnaire=http://q.org/Questionnaire/q1|2.0",
    "Observation?subject=not a reference",
    // uri
    "ValueSet?url=http://hl7.org/fhir/ValueSet/x",
    "ValueSet?url:below=http://hl7.org/fhir/",
    "Patient?_profile=http://hl7.org/fhir/StructureDefinition/vitalsigns",
    // composite
    "Observation?code-value-quantity=http://loinc.org|29463-7$gt185|http://unitsofmeasure.org|[lb_av]",
    "Observation?code-value-quantity=http://loinc.org|29463-7",
    // chains and reverse chains
    "Observation?subject.name=peter",
    "Observation?subject:Patient.name=peter",
    "Observation?patient.organization.name=acme",
    "Observation?subject.nonsense=x",
    "Observation?code.name=x",
    "Encounter?subject:Patient.birthdate=ge1970",
    "Patient?_has:Observation:patient:code=1234-5",
    "Patient?_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1",
    "Patient?_has:Observation:nonsense:code=1",
    "Patient?_has:Observation",
    // _id, result parameters
    "Patient?_id=a,b",
    "Patient?_id:missing=true",
    "Patient?_sort=family,-birthdate,_lastUpdated",
    "Patient?_sort=nonsense",
    "Patient?_count=20&_offset=40&_snapshot=17",
    "Patient?_count=5000",
    "Patient?_count=-1",
    "Patient?_summary=count&_total=accurate&_elements=id,name",
    "Patient?_summary=sometimes",
    "Observation?_include=Observation:subject&_include:iterate=Patient:general-practitioner:Practitioner&_revinclude=Provenance:target",
    "Observation?_include=*&_include=Observation:*",
    "Observation?_include=Observation:code",
    "Observation?_include:recurse=Observation:subject:Medication",
    "?_type=Patient,Observation&_tag=x",
    "?_type=Patient,Unicorn",
    "?_id=1&_lastUpdated=ge2020",
    "Patient?_type=Observation",
    "Patient?_format=json&_pretty=true",
    // unknown, unsupported, empty
    "Patient?nonsense=1&name=",
    "Patient?_text=cancer&_content=x&_filter=name eq x&_list=42",
    "Location?near=42.256|-83.694|11.20|km",
    "Unicorn?name=x",
];

#[test]
fn query_table() {
    let table: String = QUERIES
        .iter()
        .map(|q| render(q))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(table);
}

fn only_param(url: &str) -> ParamClause {
    let parsed = run(url).unwrap();
    match parsed.query.clauses.as_slice() {
        [Clause::Param(p)] => p.clone(),
        other => panic!("{url}: {other:?}"),
    }
}

#[test]
fn number_precision_ranges() {
    let p = only_param("RiskAssessment?probability=100");
    assert_eq!(
        p.values,
        [SearchValue::Number {
            prefix: Prefix::Eq,
            value: 100.0,
            low: 99.5,
            high: 100.5
        }]
    );
    let SearchValue::Quantity { low, high, .. } =
        only_param("Observation?value-quantity=1.50").values[0].clone()
    else {
        panic!()
    };
    assert!((low - 1.495).abs() < 1e-12 && (high - 1.505).abs() < 1e-12);
}

#[test]
fn date_prefixes() {
    for (prefix, expected) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ] {
        let p = only_param(&format!("Patient?birthdate={prefix}2020"));
        assert!(
            matches!(p.values[0], SearchValue::Date { prefix, .. } if prefix == expected),
            "{prefix}"
        );
    }
    let err = run("Patient?birthdate=on2020").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.issues[0].diagnostics.contains("birthdate")
            && err.issues[0].diagnostics.contains("on2020")
    );
}

#[test]
fn token_forms() {
    let forms = [
        ("x", TokenSystem::Any, Some("x")),
        ("|x", TokenSystem::NoSystem, Some("x")),
        ("s|x", TokenSystem::Is("s".into()), Some("x")),
        ("s|", TokenSystem::Is("s".into()), None),
    ];
    for (v, system, code) in forms {
        let p = only_param(&format!("Patient?identifier={v}"));
        assert_eq!(
            p.values,
            [SearchValue::Token {
                system,
                code: code.map(str::to_string)
            }],
            "{v}"
        );
    }
}

#[test]
fn escaping() {
    let p = only_param("Patient?name=a\\,b,c\\\\");
    let exact: Vec<_> = p
        .values
        .iter()
        .map(|v| match v {
            SearchValue::String { exact, .. } => exact.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(exact, ["a,b", "c\\"]);
}

#[test]
fn chain_targets_are_restricted_to_types_with_the_parameter() {
    let parsed = run("Observation?subject.birthdate=2000").unwrap();
    let Clause::Chain {
        reference,
        target_types,
        ..
    } = &parsed.query.clauses[0]
    else {
        panic!()
    };
    assert_eq!(reference, "subject");
    assert_eq!(target_types, &["Patient"]);
    let parsed = run("Observation?subject.name=x").unwrap();
    let Clause::Chain { target_types, .. } = &parsed.query.clauses[0] else {
        panic!()
    };
    assert_eq!(target_types, &["Location", "Patient"]);
    assert_eq!(
        run("Observation?subject.gibberish=x").unwrap_err().kind,
        ErrorKind::Invalid
    );
}

#[test]
fn modifiers_must_fit_the_type() {
    for bad in [
        "Patient?birthdate:exact=2020",
        "Patient?gender:contains=m",
        "Observation?subject:text=x",
        "Patient?name:not=x",
    ] {
        let err = run(bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{bad}");
        let param = bad.split_once('?').unwrap().1.split(':').next().unwrap();
        assert!(err.issues[0].diagnostics.contains(param), "{bad}: {err}");
    }
    assert_eq!(
        only_param("Observation?subject:Patient=1").modifier,
        Modifier::Type("Patient".into())
    );
    assert_eq!(only_param("Patient?_id=1").param, ParamRef::Id);
}

proptest! {
    #[test]
    fn parse_never_panics(name in "\\PC{0,24}", value in "\\PC{0,40}", t in prop::option::of("(Patient|Observation|Encounter|Unicorn)")) {
        let _ = parse_search(t.as_deref(), &[(name.clone(), value.clone())]);
    }

    #[test]
    fn parse_never_panics_on_search_syntax(
        name in "(_has:|[a-z_-]{1,12}|subject|patient|code|value-quantity|birthdate|_sort|_include|_count)([:.][A-Za-z:._-]{0,16})?",
        value in "[a-z0-9|$,\\\\:/.\\- ]{0,30}",
    ) {
        let _ = parse_search(Some("Observation"), &[(name.clone(), value.clone())]);
        let _ = parse_search(Some("Patient"), &[(name, value)]);
    }
}
