//! Vocabulary maps: HL7 v2 tables to FHIR codes, and v2 coding system names (table 0396) to FHIR
//! system URIs, after the concept maps of the v2-to-FHIR implementation guide.
//!
//! Owns: every fixed code translation the segment maps use. Does not: look anything up at run
//! time or invent codes: an unknown v2 code maps to `None` and the caller keeps the original
//! coding (or leaves the element out).

/// The FHIR system URI for a v2 coding system name (CWE.3, CWE.6), or `None` when the name is not
/// a known one (the caller mints a source-local system for it).
pub(crate) fn coding_system(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    let known = match upper.as_str() {
        "LN" | "LOINC" => "http://loinc.org",
        "SCT" | "SNM" | "SNOMED" | "SNOMEDCT" | "SNOMED CT" | "SCTUK" => "http://snomed.info/sct",
        "I10" | "ICD10" | "ICD-10" => "http://hl7.org/fhir/sid/icd-10",
        "I10C" | "ICD10CM" => "http://hl7.org/fhir/sid/icd-10-cm",
        "I9" | "I9C" | "I9CM" | "ICD9" => "http://hl7.org/fhir/sid/icd-9-cm",
        "UCUM" => "http://unitsofmeasure.org",
        "CPT" | "C4" => "http://www.ama-assn.org/go/cpt",
        "NDC" => "http://hl7.org/fhir/sid/ndc",
        "RXNORM" | "RXN" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "CVX" => "http://hl7.org/fhir/sid/cvx",
        "DCM" => "http://dicom.nema.org/resources/ontology/DCM",
        "ISO3166_1" | "ISO3166" => "urn:iso:std:iso:3166",
        "NUCC" => "http://nucc.org/provider-taxonomy",
        _ => {
            // HL7nnnn (and the HL7-defined tables' "HL7" prefix in any case).
            if let Some(table) = upper.strip_prefix("HL7")
                && table.len() == 4
                && table.bytes().all(|b| b.is_ascii_digit())
            {
                return Some(v2_table(table));
            }
            if is_oid(name.trim()) {
                return Some(format!("urn:oid:{}", name.trim()));
            }
            if name.contains("://") || name.starts_with("urn:") {
                return Some(name.trim().to_string());
            }
            return None;
        }
    };
    Some(known.to_string())
}

/// The THO CodeSystem of a v2 table, e.g. `v2-0203`.
pub(crate) fn v2_table(table: &str) -> String {
    format!("http://terminology.hl7.org/CodeSystem/v2-{table}")
}

/// True for a dotted numeric object identifier (`2.16.840.1.113883`).
pub(crate) fn is_oid(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').count() >= 2
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(crate) const V3_PARTICIPATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub(crate) const V3_NULL_FLAVOR: &str = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";

/// Table 0001 administrative sex to `Patient.gender`.
pub(crate) fn gender(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "M" => "male",
        "F" => "female",
        "O" | "A" | "X" => "other",
        "U" | "N" => "unknown",
        _ => return None,
    })
}

/// Table 0002 marital status to a v3 MaritalStatus (or NullFlavor) coding: (system, code, display).
pub(crate) fn marital_status(code: &str) -> Option<(&'static str, &'static str, &'static str)> {
    const MS: &str = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
    Some(match code.to_ascii_uppercase().as_str() {
        "A" | "E" => (MS, "L", "Legally Separated"),
        "D" => (MS, "D", "Divorced"),
        "M" => (MS, "M", "Married"),
        "S" => (MS, "S", "Never Married"),
        "W" => (MS, "W", "Widowed"),
        "C" | "G" | "P" | "R" => (MS, "T", "Domestic partner"),
        "N" => (MS, "A", "Annulled"),
        "I" => (MS, "I", "Interlocutory"),
        "B" => (MS, "U", "unmarried"),
        "U" | "T" => (V3_NULL_FLAVOR, "UNK", "unknown"),
        "O" => (V3_NULL_FLAVOR, "OTH", "other"),
        _ => return None,
    })
}

/// Table 0004 patient class to `Encounter.class`: (system, code, display).
pub(crate) fn encounter_class(code: &str) -> Option<(String, &'static str, &'static str)> {
    let v3 = |c, d| Some((V3_ACT_CODE.to_string(), c, d));
    let v2 = |c, d| Some((v2_table("0004"), c, d));
    match code.to_ascii_uppercase().as_str() {
        "E" => v3("EMER", "emergency"),
        "I" => v3("IMP", "inpatient encounter"),
        "O" => v3("AMB", "ambulatory"),
        "P" => v3("PRENC", "pre-admission"),
        "R" => v2("R", "Recurring patient"),
        "B" => v2("B", "Obstetrics"),
        "C" => v2("C", "Commercial Account"),
        "N" => v2("N", "Not Applicable"),
        "U" => v2("U", "Unknown"),
        _ => None,
    }
}

/// Table 0200 name type to `HumanName.use`.
pub(crate) fn name_use(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "L" | "R" | "C" => "official",
        "D" => "usual",
        "M" | "B" => "maiden",
        "N" | "A" => "nickname",
        "S" => "anonymous",
        "NB" | "TEMP" => "temp",
        "BAD" => "old",
        _ => return None,
    })
}

/// Table 0190 address type to (`Address.use`, `Address.type`).
pub(crate) fn address_use(code: &str) -> (Option<&'static str>, Option<&'static str>) {
    match code.to_ascii_uppercase().as_str() {
        "H" | "P" | "RH" => (Some("home"), None),
        "B" | "O" => (Some("work"), None),
        "C" => (Some("temp"), None),
        "BA" => (Some("old"), None),
        "M" => (None, Some("postal")),
        "SH" => (None, Some("physical")),
        _ => (None, None),
    }
}

/// Table 0201 telecommunication use to `ContactPoint.use`.
pub(crate) fn telecom_use(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "PRN" | "ORN" => "home",
        "WPN" => "work",
        "VHN" => "temp",
        "PRS" => "mobile",
        _ => return None,
    })
}

/// Table 0202 telecommunication equipment type to `ContactPoint.system`; the second value says
/// the device is a mobile phone.
pub(crate) fn telecom_system(code: &str) -> Option<(&'static str, bool)> {
    Some(match code.to_ascii_uppercase().as_str() {
        "PH" => ("phone", false),
        "CP" => ("phone", true),
        "FX" => ("fax", false),
        "BP" => ("pager", false),
        "INTERNET" | "X.400" => ("email", false),
        "MD" | "SAT" | "TDD" | "TTY" => ("other", false),
        _ => return None,
    })
}

/// Table 0085 observation result status to `Observation.status`.
pub(crate) fn observation_status(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "C" => "corrected",
        "D" | "W" => "entered-in-error",
        "F" | "U" => "final",
        "I" | "O" => "registered",
        "P" | "R" | "S" => "preliminary",
        "X" | "N" => "cancelled",
        "A" => "amended",
        _ => return None,
    })
}

/// Table 0123 result status (OBR-25) to `DiagnosticReport.status`.
pub(crate) fn report_status(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "O" | "I" | "S" => "registered",
        "A" => "partial",
        "P" | "R" => "preliminary",
        "C" => "corrected",
        "F" => "final",
        "X" => "cancelled",
        "M" => "amended",
        _ => return None,
    })
}

/// The v2 interpretation codes (table 0078) that v3 ObservationInterpretation has with the same
/// meaning and code.
pub(crate) fn is_v3_interpretation(code: &str) -> bool {
    matches!(
        code,
        "L" | "H"
            | "LL"
            | "HH"
            | "N"
            | "A"
            | "AA"
            | "<"
            | ">"
            | "S"
            | "R"
            | "I"
            | "MS"
            | "VS"
            | "B"
            | "W"
            | "U"
            | "D"
            | "NEG"
            | "POS"
            | "IND"
            | "DET"
            | "ND"
            | "NR"
            | "E"
            | "EX"
            | "HX"
            | "LX"
            | "QCF"
            | "TOX"
            | "CAR"
            | "RR"
            | "SDD"
            | "SYN-R"
            | "SYN-S"
            | "WR"
            | "IE"
            | "HU"
            | "LU"
            | "H>"
            | "L<"
            | "NS"
    )
}

/// Table 0127 allergen type to (`AllergyIntolerance.category`, `AllergyIntolerance.type`).
pub(crate) fn allergy_category(code: &str) -> (Option<&'static str>, Option<&'static str>) {
    match code.to_ascii_uppercase().as_str() {
        "DA" => (Some("medication"), Some("allergy")),
        "FA" => (Some("food"), Some("allergy")),
        "MA" => (None, Some("allergy")),
        "MC" => (None, Some("intolerance")),
        "EA" | "AA" | "PA" | "LA" => (Some("environment"), Some("allergy")),
        "DI" => (Some("medication"), Some("intolerance")),
        "FI" => (Some("food"), Some("intolerance")),
        _ => (None, None),
    }
}

/// Table 0128 allergy severity to (`AllergyIntolerance.criticality`, `reaction.severity`).
pub(crate) fn allergy_severity(code: &str) -> (Option<&'static str>, Option<&'static str>) {
    match code.to_ascii_uppercase().as_str() {
        "SV" => (Some("high"), Some("severe")),
        "MO" => (Some("low"), Some("moderate")),
        "MI" => (Some("low"), Some("mild")),
        "U" => (Some("unable-to-assess"), None),
        _ => (None, None),
    }
}

/// Table 0278 filler status (SCH-25) to `Appointment.status`.
pub(crate) fn appointment_status(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_lowercase().as_str() {
        "pending" => "pending",
        "waitlist" => "waitlist",
        "booked" | "overbook" => "booked",
        "started" => "checked-in",
        "complete" => "fulfilled",
        "cancelled" | "discontinued" => "cancelled",
        "deleted" => "entered-in-error",
        "noshow" => "noshow",
        _ => return None,
    })
}

/// Table 0271 document completion status (TXA-17) to `DocumentReference.docStatus`.
pub(crate) fn doc_status(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "AU" | "LA" | "DO" => "final",
        "DI" | "IN" | "IP" | "PA" => "preliminary",
        _ => return None,
    })
}

/// Table 0191 / 0834 type of data (ED.2) and subtype (ED.3) to a MIME type.
pub(crate) fn mime_type(kind: Option<&str>, subtype: Option<&str>) -> String {
    let kind = kind.unwrap_or_default().to_ascii_lowercase();
    let sub = subtype.unwrap_or_default().to_ascii_lowercase();
    if kind.contains('/') {
        return kind;
    }
    if sub.contains('/') {
        return sub;
    }
    let top = match kind.as_str() {
        "im" | "image" => "image",
        "au" | "audio" => "audio",
        "tx" | "text" | "ft" => "text",
        "video" => "video",
        "multipart" => "multipart",
        _ => "application",
    };
    let sub = match sub.as_str() {
        "" if top == "text" => "plain",
        "" => "octet-stream",
        "jpg" => "jpeg",
        "rtf" if top == "text" => "rtf",
        other => other,
    };
    format!("{top}/{sub}")
}

/// Table 0272 document confidentiality (TXA-18) to v3 Confidentiality.
pub(crate) fn confidentiality(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "V" => "V",
        "R" => "R",
        "U" => "N",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems() {
        assert_eq!(coding_system("LN").as_deref(), Some("http://loinc.org"));
        assert_eq!(
            coding_system("HL70063").as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v2-0063")
        );
        assert_eq!(
            coding_system("2.16.840.1.113883.6.1").as_deref(),
            Some("urn:oid:2.16.840.1.113883.6.1")
        );
        assert_eq!(coding_system("L"), None);
        assert_eq!(coding_system("99LOCAL"), None);
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type(Some("IM"), Some("JPEG")), "image/jpeg");
        assert_eq!(
            mime_type(Some("application"), Some("pdf")),
            "application/pdf"
        );
        assert_eq!(
            mime_type(Some("NS"), Some("Octet-stream")),
            "application/octet-stream"
        );
        assert_eq!(mime_type(Some("TX"), None), "text/plain");
    }
}
