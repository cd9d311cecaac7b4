//! Properties over generated input: arbitrary bytes never panic anything in the crate; every
//! message that parses encodes and parses back equal; generated messages (random delimiters,
//! segments, repetitions, components, subcomponents and values full of delimiters, escape
//! characters, line breaks and non-ASCII text) round-trip; MLLP frames survive any split; and a
//! 10 MB message parses whole. (How fast is a benchmark's business, not a test's.)
//!
//! Owns: the "never panics" and round-trip guarantees. Does not: check particular values (see
//! `negative.rs` and `messages.rs`).

use concord_hl7v2::ack::{self, AckCode};
use concord_hl7v2::mllp::{Deframer, frame};
use concord_hl7v2::{Component, Delimiters, Field, Message, Repetition, Segment, check_supported};
use proptest::prelude::*;

/// Everything the crate offers, run on one input; nothing may panic.
fn exercise(bytes: &[u8]) {
    match Message::parse(bytes) {
        Ok(message) => {
            let _ = check_supported(&message);
            let _ = message.message_type();
            for segment in message.segments() {
                let _ = segment.get(3, 2);
                let _ = segment.get_sub(5, 2, 1, 2);
            }
            let encoded = message.encode();
            let again = Message::parse(&encoded).expect("an encoded message parses");
            assert_eq!(again, message);
            let reply = ack::build(&message, AckCode::AE, &[], "A", "2024");
            Message::parse(&reply).expect("an ACK parses");
        }
        Err(error) => {
            let reply = ack::reject_unparseable(bytes, &error, "A", "2024");
            Message::parse(&reply).expect("an AR ACK parses");
        }
    }
    let mut deframer = Deframer::new(64);
    deframer.push(bytes);
    while deframer.next_message().is_some() {}
}

/// Bytes that look like HL7 often enough to reach deep into the parser.
fn hl7ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"|".to_vec()),
        Just(b"^".to_vec()),
        Just(b"~".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"&".to_vec()),
        Just(b"#".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\rPID|".to_vec()),
        Just(b"\\X".to_vec()),
        Just(b"\\.sp".to_vec()),
        Just(b"\\.br\\".to_vec()),
        Just(b"\\H\\".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xE9".to_vec()),
        Just("\u{e9}\u{1F600}".as_bytes().to_vec()),
        Just(b"\x0b".to_vec()),
        Just(b"\x1c\r".to_vec()),
        "[A-Z0-9 \"]{0,6}".prop_map(String::into_bytes),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    let header = prop_oneof![
        Just(b"MSH|^~\\&|".to_vec()),
        Just(b"MSH|^~\\&#|".to_vec()),
        Just(b"MSH#$%!*#".to_vec()),
        Just(b"\xEF\xBB\xBFMSH|^~\\&".to_vec()),
        Just(b"MSH".to_vec()),
        Just(Vec::new()),
    ];
    (header, proptest::collection::vec(piece, 0..60))
        .prop_map(|(h, pieces)| [h, pieces.concat()].concat())
}

/// Values that need escaping: delimiters of every kind, escapes, line breaks, non-ASCII.
fn value() -> impl Strategy<Value = String> {
    "([a-z0-9 ]|[|^~\\\\&#!$%*@]|\r|\n|\t|\u{e9}|\u{1F600}|\"\"){0,8}"
}

fn component() -> impl Strategy<Value = Component> {
    proptest::collection::vec(value(), 0..3).prop_map(Component::new)
}

fn repetition() -> impl Strategy<Value = Repetition> {
    proptest::collection::vec(component(), 0..4).prop_map(Repetition::new)
}

fn field() -> impl Strategy<Value = Field> {
    proptest::collection::vec(repetition(), 0..3).prop_map(Field::new)
}

fn segment(id: impl Strategy<Value = String>) -> impl Strategy<Value = Segment> {
    (id, proptest::collection::vec(field(), 0..8)).prop_map(|(id, fields)| Segment::new(id, fields))
}

fn delimiters() -> impl Strategy<Value = Delimiters> {
    let pool = b"|^~\\&#!$%*@+/".to_vec();
    (Just(pool).prop_shuffle(), any::<bool>()).prop_map(|(p, truncation)| Delimiters {
        field: p[0],
        component: p[1],
        repetition: p[2],
        escape: p[3],
        subcomponent: p[4],
        truncation: truncation.then_some(p[5]),
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        delimiters(),
        segment(Just("MSH".to_owned())),
        proptest::collection::vec(segment("(PID|PV1|OBX|NTE|Z[A-Z0-9]{2})"), 0..6),
    )
        .prop_map(|(d, msh, rest)| {
            let segments = std::iter::once(msh).chain(rest).collect();
            Message::new(d, segments).expect("generated messages are valid")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
    }

    #[test]
    fn hl7ish_bytes_never_panic_and_round_trip(bytes in hl7ish()) {
        exercise(&bytes);
    }

    #[test]
    fn generated_messages_round_trip(m in message()) {
        let encoded = m.encode();
        let again = Message::parse(&encoded);
        prop_assert_eq!(again.as_ref(), Ok(&m));
        // Encoding is stable, and the ACK of any message parses.
        prop_assert_eq!(again.unwrap().encode(), encoded);
        let reply = ack::build(&m, AckCode::AA, &[], "A", "2024");
        prop_assert!(Message::parse(&reply).is_ok());
    }

    #[test]
    fn frames_survive_any_split(
        messages in proptest::collection::vec("[ -~\r\n]{0,40}", 1..5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m.as_bytes())).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut deframer = Deframer::new(1024);
        let mut out = Vec::new();
        for pair in points.windows(2) {
            deframer.push(&stream[pair[0]..pair[1]]);
            while let Some(m) = deframer.next_message() {
                out.push(m.expect("no framing error"));
            }
        }
        let expected: Vec<Vec<u8>> = messages.iter().map(|m| m.clone().into_bytes()).collect();
        prop_assert_eq!(out, expected);
    }
}

/// A 10 MB message of 40,000 OBX segments, and one whose single OBX-5 holds 10 MB of base64.
#[test]
fn ten_megabyte_messages_parse_whole() {
    let header = "MSH|^~\\&|LAB|FAC|EHR|FAC|20240101||ORU^R01^ORU_R01|BIG|P|2.5.1\rPID|1||123^^^NHS||DOE^JANE\r";
    let mut many = String::from(header);
    let mut n = 0;
    while many.len() < 10 * 1024 * 1024 {
        n += 1;
        many.push_str(&format!(
            "OBX|{n}|NM|8867-4^Heart rate^LN||{n}|/min^per minute^UCUM|60-100|N|||F|||20240101120000+0000|LAB^Lab&1.2.3&ISO|A\\T\\E~ward 3^x&y\r"
        ));
    }
    let mut single = String::from(header);
    single.push_str("OBX|1|ED|PDF^Report||^application^pdf^Base64^");
    single.extend(std::iter::repeat_n("QUJDRA==", 10 * 1024 * 1024 / 8));
    single.push('\r');

    for (name, text, segments) in [
        ("many segments", &many, n + 2),
        ("one large field", &single, 3),
    ] {
        let message = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(message.segments().len(), segments, "{name}");
        let last = &message.segments()[segments - 1];
        assert_eq!(last.id(), "OBX", "{name}");
    }
}
