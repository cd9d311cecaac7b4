//! Conformance over real messages: every file in `../shared/testdata/hl7v2/messages` parses, its
//! message type, control id and version read as a naive split of the MSH line reads them, it passes
//! the version gate, and encoding gives back the file byte for byte (and so parses back equal).
//!
//! Owns: the check of the parser against the shared sample messages. Does not: test edge cases
//! (see `negative.rs`) or mapping to FHIR.

use std::path::Path;

use concord_hl7v2::{Message, check_supported};

const MESSAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/hl7v2/messages"
);

fn sample_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(MESSAGES);
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
        panic!("the HL7 v2 sample messages are missing at {MESSAGES} ({e}): expected the shared test data next to the repository")
    });
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// MSH-n by splitting the first line at `|` (MSH-1 is the separator, so MSH-n is part n - 1).
fn naive_msh(bytes: &[u8], n: usize) -> String {
    let text = std::str::from_utf8(bytes).unwrap();
    let line = text.split('\r').next().unwrap();
    line.split('|').nth(n - 1).unwrap_or("").to_owned()
}

#[test]
fn every_sample_message_parses_reads_and_round_trips() {
    let files = sample_files();
    assert_eq!(files.len(), 57, "the shared set has 57 messages");
    for (name, bytes) in &files {
        let message = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // File names are TYPE-TRIGGER-NN.hl7.
        let mut parts = name.split('-');
        let (code, trigger) = (parts.next().unwrap(), parts.next().unwrap());
        let message_type = message.message_type();
        assert_eq!(message_type.code, code, "{name}");
        assert_eq!(message_type.trigger, trigger, "{name}");
        assert_eq!(
            message_type.structure,
            format!("{code}_{trigger}"),
            "{name}"
        );
        assert_eq!(
            message.control_id(),
            Some(naive_msh(bytes, 10).as_str()),
            "{name}"
        );
        let version = naive_msh(bytes, 12);
        assert_eq!(
            message.version(),
            Some(version.split('^').next().unwrap()),
            "{name}"
        );
        check_supported(&message).unwrap_or_else(|e| panic!("{name}: {e}"));
        let segment_count = bytes
            .split(|&b| b == b'\r')
            .filter(|s| !s.is_empty())
            .count();
        assert_eq!(message.segments().len(), segment_count, "{name}");
        assert!(!message.charset_fallback(), "{name}");

        let encoded = message.encode();
        assert!(
            encoded == *bytes,
            "{name}: encoding differs from the file (first difference at byte {})",
            encoded
                .iter()
                .zip(bytes.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(encoded.len().min(bytes.len()))
        );
        assert_eq!(Message::parse(&encoded).unwrap(), message, "{name}");
    }
}

#[test]
fn sample_fields_read_as_the_standard_numbers_them() {
    let bytes = std::fs::read(Path::new(MESSAGES).join("ADT-A01-01.hl7")).unwrap();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.control_id(), Some("MSG00001"));
    assert_eq!(m.version(), Some("2.8"));
    assert_eq!(m.sending_application(), Some("ADTApp"));
    assert_eq!(m.sending_facility(), Some("GHHSFacility"));
    assert_eq!(m.msh().get_sub(4, 1, 2, 1), Some("2.16.840.1.122848.1.30"));
    assert_eq!(m.processing_id(), Some("P"));
    assert_eq!(m.accept_ack_type(), None);
    assert!(!m.enhanced_ack_mode());

    let pid = m.first("PID").unwrap();
    assert_eq!(pid.index(), 4);
    // PID-3: two repetitions; the first's assigning authority has subcomponents.
    assert_eq!(pid.repetitions(3).len(), 2);
    assert_eq!(pid.get(3, 1), Some("PATID1234"));
    assert_eq!(pid.get_sub(3, 1, 4, 2), Some("2.16.1"));
    assert_eq!(pid.get_sub(3, 2, 5, 1), Some("SS"));
    // PID-5.1 is a name with subcomponents: family "EVERYMAN", own surname "Aniston".
    assert_eq!(pid.get(5, 1), Some("EVERYMAN"));
    assert_eq!(pid.get_sub(5, 1, 1, 5), Some("Aniston"));
    assert_eq!(pid.get_sub(5, 1, 1, 2), None, "empty subcomponent");
    assert_eq!(pid.get(5, 2), Some("ADAM"));
    assert_eq!(pid.get(7, 1), Some("198808181126+0215"));
    assert_eq!(pid.get(8, 1), Some("M"));

    // \T\ unescapes to the subcomponent separator.
    let pv1 = m.first("PV1").unwrap();
    let hospital_service = pv1
        .fields()
        .iter()
        .find_map(|f| f.text().contains("A&E").then(|| f.text().to_owned()));
    assert_eq!(
        hospital_service.as_deref(),
        Some("NHS Provider-General (inc.A&E-this Hosp)")
    );

    assert_eq!(m.segments_named("ROL").count(), 3);
    assert_eq!(
        m.segments_named("ROL")
            .map(|s| s.index())
            .collect::<Vec<_>>(),
        [7, 12, 18]
    );

    let oru = Message::parse(&std::fs::read(Path::new(MESSAGES).join("ORU-R01-01.hl7")).unwrap())
        .unwrap();
    assert_eq!(oru.version(), Some("2.5.1"));
    assert_eq!(oru.processing_id(), Some("T"));
    assert_eq!(oru.accept_ack_type(), Some("AL"));
    assert_eq!(oru.application_ack_type(), Some("NE"));
    assert!(oru.enhanced_ack_mode());
}
