//! Acknowledgements: what an ACK copies from the message it answers, how errors become ERR
//! segments, original and enhanced mode, old versions, and the AR for input that did not parse.
//!
//! Owns: the checks of `ack::build` and `ack::reject_unparseable`, read back through the parser.
//! Does not: decide which code a message deserves (the listener does).

use std::path::Path;

use concord_hl7v2::ack::{self, AckCode};
use concord_hl7v2::{ErrorCode, Message, ParseError, check_supported};

const MESSAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/hl7v2/messages"
);

fn sample(name: &str) -> Message {
    Message::parse(&std::fs::read(Path::new(MESSAGES).join(name)).unwrap()).unwrap()
}

/// A field as text, re-encoded with its delimiters (for whole-field comparisons).
fn raw_field(m: &Message, segment: &str, n: usize) -> String {
    let bytes = m.encode();
    let text = String::from_utf8(bytes).unwrap();
    let line = text
        .split('\r')
        .find(|l| l.starts_with(segment))
        .unwrap()
        .to_owned();
    let sep = char::from(m.delimiters().field);
    let index = if segment == "MSH" { n - 1 } else { n };
    line.split(sep).nth(index).unwrap_or("").to_owned()
}

#[test]
fn aa_copies_the_header_the_right_way_round() {
    let original = sample("ADT-A01-01.hl7");
    let bytes = ack::build(
        &original,
        AckCode::AA,
        &[],
        "ACK0001",
        "20240102030405+0000",
    );
    let ack = Message::parse(&bytes).unwrap();
    check_supported(&ack).unwrap();
    assert!(bytes.ends_with(b"\r"));
    assert_eq!(ack.delimiters(), original.delimiters());
    // Sender and receiver swap, whole fields (HD with OID components).
    assert_eq!(raw_field(&ack, "MSH", 3), raw_field(&original, "MSH", 5));
    assert_eq!(raw_field(&ack, "MSH", 4), raw_field(&original, "MSH", 6));
    assert_eq!(raw_field(&ack, "MSH", 5), raw_field(&original, "MSH", 3));
    assert_eq!(raw_field(&ack, "MSH", 6), raw_field(&original, "MSH", 4));
    assert_eq!(
        raw_field(&ack, "MSH", 4),
        "GHHRFacility^2.16.840.1.1122848.1.32^ISO"
    );
    assert_eq!(ack.timestamp(), Some("20240102030405+0000"));
    assert_eq!(raw_field(&ack, "MSH", 9), "ACK^A01^ACK");
    assert_eq!(ack.control_id(), Some("ACK0001"));
    assert_eq!(ack.processing_id(), Some("P"));
    assert_eq!(ack.version(), Some("2.8"));
    // Original mode: the ACK asks for nothing.
    assert_eq!(ack.accept_ack_type(), None);
    assert_eq!(ack.application_ack_type(), None);
    let msa = ack.first("MSA").unwrap();
    assert_eq!(msa.index(), 2);
    assert_eq!(msa.get(1, 1), Some("AA"));
    assert_eq!(msa.get(2, 1), Some("MSG00001"));
    assert_eq!(ack.segments().len(), 2, "no ERR without errors");
}

#[test]
fn ae_names_segment_field_and_code_in_err() {
    let original = sample("ADT-A01-01.hl7");
    let pid = original.first("PID").unwrap();
    let errors = [
        ParseError::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3 has no identifier | at all",
        )
        .at(pid, Some(3)),
        ParseError::new(ErrorCode::UnsupportedEventCode, "event not handled"),
    ];
    let bytes = ack::build(&original, AckCode::AE, &errors, "A2", "20240102");
    let ack = Message::parse(&bytes).unwrap();
    assert_eq!(ack.first("MSA").unwrap().get(1, 1), Some("AE"));
    let errs: Vec<_> = ack.segments_named("ERR").collect();
    assert_eq!(errs.len(), 2);
    let err = errs[0];
    assert_eq!(
        err.field(1).map(|f| f.is_empty()),
        Some(true),
        "ERR-1 is for 2.4 and older"
    );
    assert_eq!(err.get(2, 1), Some("PID"));
    assert_eq!(err.get(2, 2), Some("4"));
    assert_eq!(err.get(2, 3), Some("3"));
    assert_eq!(err.get(3, 1), Some("101"));
    assert_eq!(err.get(3, 2), Some("Required field missing"));
    assert_eq!(err.get(3, 3), Some("HL70357"));
    assert_eq!(err.get(4, 1), Some("E"));
    assert_eq!(err.get(8, 1), Some("PID-3 has no identifier | at all"));
    let second = errs[1];
    assert_eq!(second.get(2, 1), None, "no location");
    assert_eq!(second.get(3, 1), Some("201"));
    assert_eq!(second.get(8, 1), Some("event not handled"));
}

#[test]
fn enhanced_mode_commit_ack() {
    // ORU-R01-01 has MSH-15 AL and MSH-16 NE: enhanced mode, version 2.5.1, processing id T.
    let original = sample("ORU-R01-01.hl7");
    assert!(original.enhanced_ack_mode());
    let bytes = ack::build(&original, AckCode::CA, &[], "C1", "20240102");
    let ack = Message::parse(&bytes).unwrap();
    assert_eq!(raw_field(&ack, "MSH", 9), "ACK^R01^ACK");
    assert_eq!(ack.version(), Some("2.5.1"));
    assert_eq!(ack.processing_id(), Some("T"));
    assert_eq!(ack.accept_ack_type(), Some("NE"));
    assert_eq!(ack.application_ack_type(), Some("NE"));
    let msa = ack.first("MSA").unwrap();
    assert_eq!(msa.get(1, 1), Some("CA"));
    assert_eq!(
        msa.get(2, 1),
        Some("2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325")
    );
}

#[test]
fn accepting_with_errors_gives_warnings() {
    let original = sample("ADT-A40-01.hl7");
    let warning = ParseError::new(ErrorCode::TableValueNotFound, "unknown code kept as text")
        .with_segment("PID", 3)
        .with_field(8);
    for code in [AckCode::AA, AckCode::CA] {
        let ack = Message::parse(&ack::build(
            &original,
            code,
            std::slice::from_ref(&warning),
            "W",
            "2024",
        ))
        .unwrap();
        assert_eq!(ack.first("ERR").unwrap().get(4, 1), Some("W"), "{code:?}");
    }
    for code in [AckCode::AE, AckCode::AR, AckCode::CE, AckCode::CR] {
        let ack = Message::parse(&ack::build(
            &original,
            code,
            std::slice::from_ref(&warning),
            "E",
            "2024",
        ))
        .unwrap();
        assert_eq!(ack.first("MSA").unwrap().get(1, 1), Some(code.as_str()));
        assert_eq!(ack.first("ERR").unwrap().get(4, 1), Some("E"), "{code:?}");
    }
}

#[test]
fn version_2_4_gets_err_1_and_msa_3_and_custom_delimiters_are_kept() {
    let original =
        Message::parse(b"MSH#$%!*#APP#FAC#RCV#RFAC#2024##ADT$A08#X9#P#2.4\rPID#1##123\r").unwrap();
    let error = ParseError::new(ErrorCode::DataType, "bad date")
        .with_segment("PID", 2)
        .with_field(7);
    let bytes = ack::build(&original, AckCode::AE, &[error], "A", "2024");
    assert!(bytes.starts_with(b"MSH#$%!*#RCV#RFAC#APP#FAC#2024##ACK$A08$ACK#A#P#2.4\r"));
    let ack = Message::parse(&bytes).unwrap();
    let msa = ack.first("MSA").unwrap();
    assert_eq!(msa.get(2, 1), Some("X9"));
    assert_eq!(msa.get(3, 1), Some("bad date"));
    let err = ack.first("ERR").unwrap();
    assert_eq!(err.get(1, 1), Some("PID"));
    assert_eq!(err.get(1, 2), Some("2"));
    assert_eq!(err.get(1, 3), Some("7"));
    assert_eq!(err.get_sub(1, 1, 4, 1), Some("102"));
    assert_eq!(err.get_sub(1, 1, 4, 3), Some("HL70357"));
    assert_eq!(err.get(3, 1), Some("102"));
}

#[test]
fn unparseable_input_gets_an_ar_from_what_could_be_read() {
    // MSH-2 has three characters: the parser rejects it, but the header is still readable.
    let bytes =
        b"MSH|^~\\|SENDER^x|SFAC|RCV|RFAC|2024||ADT^A04^ADT_A04|CTRL9|P|2.4|||AL|AL\rPID|1\r";
    let error = Message::parse(bytes).unwrap_err();
    let reply = ack::reject_unparseable(bytes, &error, "R1", "20240102");
    let ack = Message::parse(&reply).unwrap();
    check_supported(&ack).unwrap();
    assert_eq!(ack.sending_application(), Some("RCV"));
    assert_eq!(ack.receiving_application(), Some("SENDER"));
    assert_eq!(ack.receiving_facility(), Some("SFAC"));
    assert_eq!(raw_field(&ack, "MSH", 9), "ACK^A04^ACK");
    assert_eq!(ack.version(), Some("2.4"));
    assert_eq!(ack.accept_ack_type(), Some("NE"));
    let msa = ack.first("MSA").unwrap();
    assert_eq!(msa.get(1, 1), Some("AR"));
    assert_eq!(msa.get(2, 1), Some("CTRL9"));
    let err = ack.first("ERR").unwrap();
    assert_eq!(err.get(2, 1), Some("MSH"));
    assert_eq!(err.get(2, 3), Some("2"));
    assert_eq!(err.get(3, 1), Some("101"));

    for garbage in [
        &b""[..],
        b"\x00\xFF\x0B garbage",
        b"MSH",
        b"MSHA",
        b"PID|1|||",
    ] {
        let error = Message::parse(garbage).unwrap_err();
        let reply = ack::reject_unparseable(garbage, &error, "R2", "2024");
        let ack = Message::parse(&reply).unwrap();
        check_supported(&ack).unwrap();
        assert_eq!(raw_field(&ack, "MSH", 9), "ACK");
        assert_eq!(ack.first("MSA").unwrap().get(1, 1), Some("AR"));
        assert_eq!(ack.first("MSA").unwrap().get(2, 1), None);
        assert_eq!(ack.first("ERR").unwrap().get(3, 1), Some(error.code.code()));
    }
}
