//! Data-driven edge cases of the parser: bad headers, wrong delimiters, binary garbage, empty
//! input, bad segment ids, segment endings, byte-order marks, character sets, custom delimiters and
//! the version gate. Each case is a row: input and the expected result, checked by one `check`.
//!
//! Owns: the parser's behaviour at its edges, and the rule that errors never quote field contents
//! (every input carries the marker `SECRET` in its data, and no error may mention it). Does not:
//! cover the sample messages (see `messages.rs`) or random input (see `properties.rs`).

use concord_hl7v2::{ErrorCode, Message, check_supported};

/// What a row expects.
enum Expect {
    /// Parses and passes the version gate, with this many segments; `then` checks more.
    Parses { segments: usize, then: fn(&Message) },
    /// Parses, but the version gate says this.
    Unsupported(ErrorCode),
    /// Fails to parse with this code, location and a message containing `mentions`.
    Fails {
        code: ErrorCode,
        segment: Option<(&'static str, usize)>,
        field: Option<usize>,
        mentions: &'static str,
    },
}

use Expect::{Fails, Parses, Unsupported};

const MSH: &str = "MSH|^~\\&|APP|FAC|RCV|RFAC|20240101120000||ADT^A01^ADT_A01|C1|P|2.5.1";

fn nothing(_: &Message) {}

fn check(name: &str, input: &[u8], expect: Expect) {
    let parsed = Message::parse(input);
    match (parsed, expect) {
        (Ok(message), Parses { segments, then }) => {
            assert_eq!(message.segments().len(), segments, "{name}: segment count");
            check_supported(&message).unwrap_or_else(|e| panic!("{name}: {e}"));
            then(&message);
            let again = Message::parse(&message.encode()).unwrap();
            assert_eq!(again, message, "{name}: encode and parse again");
        }
        (Ok(message), Unsupported(code)) => {
            let error = check_supported(&message).expect_err(name);
            assert_eq!(error.code, code, "{name}: {error}");
            assert_eq!(error.segment, Some(("MSH".to_owned(), 1)), "{name}");
            assert_eq!(error.field, Some(12), "{name}");
            assert!(!error.to_string().contains("SECRET"), "{name}: {error}");
        }
        (
            Err(error),
            Fails {
                code,
                segment,
                field,
                mentions,
            },
        ) => {
            assert_eq!(error.code, code, "{name}: {error}");
            assert_eq!(
                error.segment,
                segment.map(|(id, i)| (id.to_owned(), i)),
                "{name}: {error}"
            );
            assert_eq!(error.field, field, "{name}: {error}");
            assert!(
                error.message.contains(mentions),
                "{name}: {error:?} should mention {mentions:?}"
            );
            assert!(!error.to_string().contains("SECRET"), "{name}: {error}");
        }
        (Ok(_), Fails { .. }) => panic!("{name}: parsed, expected an error"),
        (Err(error), _) => panic!("{name}: {error}"),
    }
}

fn msg(segments: &[&str], ending: &str) -> Vec<u8> {
    let mut out = String::new();
    for s in segments {
        out.push_str(s);
        out.push_str(ending);
    }
    out.into_bytes()
}

#[test]
fn empty_and_missing_header() {
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "empty input",
            b"".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "empty",
            },
        ),
        (
            "whitespace only",
            b"\r\n \t\r".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "empty",
            },
        ),
        (
            "byte-order mark only",
            b"\xEF\xBB\xBF".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "empty",
            },
        ),
        (
            "no MSH first",
            b"PID|1||SECRET\rMSH|^~\\&|A".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "does not start with an MSH",
            },
        ),
        (
            "batch header",
            b"FHS|^~\\&|SECRET\rBHS|^~\\&\rMSH|^~\\&|A".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "batch",
            },
        ),
        (
            "binary garbage",
            vec![
                0x00, 0xFF, 0x0B, 0x1C, 0x0D, 0x89, b'P', b'N', b'G', 0x00, 0x7F,
            ],
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "does not start with an MSH",
            },
        ),
        (
            "UTF-16 is not read",
            b"\xFF\xFEM\x00S\x00H\x00|\x00".to_vec(),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: None,
                field: None,
                mentions: "does not start with an MSH",
            },
        ),
    ];
    for (name, input, expect) in cases {
        check(name, &input, expect);
    }
}

#[test]
fn truncated_header_and_wrong_delimiters() {
    let too_short = |mentions| Fails {
        code: ErrorCode::RequiredFieldMissing,
        segment: Some(("MSH", 1)),
        field: Some(2),
        mentions,
    };
    let bad = |field, mentions| Fails {
        code: ErrorCode::DataType,
        segment: Some(("MSH", 1)),
        field: Some(field),
        mentions,
    };
    let cases: Vec<(&str, &[u8], Expect)> = vec![
        ("MSH alone", b"MSH", too_short("too short")),
        ("MSH and separator", b"MSH|", too_short("too short")),
        (
            "three encoding characters",
            b"MSH|^~\\",
            too_short("four encoding"),
        ),
        (
            "three encoding characters then a field",
            b"MSH|^~\\|SECRET|X\rPID|1",
            too_short("too short"),
        ),
        ("MSH-2 empty", b"MSH||SECRET", too_short("too short")),
        (
            "repeated encoding character",
            b"MSH|^^\\&|SECRET",
            bad(2, "differ"),
        ),
        (
            "letters as encoding characters",
            b"MSH|abcd|SECRET",
            bad(2, "printable"),
        ),
        (
            "non-ASCII encoding character",
            "MSH|^~\\é|SECRET".as_bytes(),
            bad(2, "printable"),
        ),
        (
            "letter as field separator",
            b"MSHA^~\\&ASECRET",
            bad(1, "field separator"),
        ),
        (
            "space as field separator",
            b"MSH ^~\\& SECRET",
            bad(1, "field separator"),
        ),
        (
            "tab as field separator",
            b"MSH\t^~\\&\tSECRET",
            bad(1, "field separator"),
        ),
        (
            "CR right after MSH",
            b"MSH\rPID|SECRET",
            too_short("too short"),
        ),
        (
            "six encoding characters",
            b"MSH|^~\\&#X|SECRET",
            bad(2, "more than five"),
        ),
        (
            "separator reused as encoding",
            b"MSH^^~\\&^SECRET",
            too_short("too short"),
        ),
    ];
    for (name, input, expect) in cases {
        check(name, input, expect);
    }
}

#[test]
fn segment_ids_and_garbage_after_the_header() {
    let bad_segment = |index| Fails {
        code: ErrorCode::SegmentSequence,
        segment: None,
        field: None,
        mentions: match index {
            2 => "segment 2 ",
            _ => "segment 3 ",
        },
    };
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "two-character id",
            msg(&[MSH, "PI|SECRET"], "\r"),
            bad_segment(2),
        ),
        (
            "four-character id",
            msg(&[MSH, "PIDX|SECRET"], "\r"),
            bad_segment(2),
        ),
        ("one-character line", msg(&[MSH, "P"], "\r"), bad_segment(2)),
        (
            "lowercase id",
            msg(&[MSH, "pid|SECRET"], "\r"),
            bad_segment(2),
        ),
        (
            "id then a component separator",
            msg(&[MSH, "PID^SECRET"], "\r"),
            bad_segment(2),
        ),
        (
            "free text line",
            msg(&[MSH, "PID|1", "SECRET SMITH said so"], "\r"),
            bad_segment(3),
        ),
        (
            "binary after the header",
            [
                msg(&[MSH], "\r"),
                vec![0x00, 0x01, 0xFE, b'S', b'E', b'C', b'R', b'E', b'T'],
            ]
            .concat(),
            bad_segment(2),
        ),
        (
            "second MSH",
            msg(&[MSH, "PID|1||SECRET", MSH], "\r"),
            Fails {
                code: ErrorCode::SegmentSequence,
                segment: Some(("MSH", 3)),
                field: None,
                mentions: "second MSH",
            },
        ),
        (
            "id alone and digits in ids",
            msg(&[MSH, "ZZ1", "Z01|x"], "\r"),
            Parses {
                segments: 3,
                then: |m| {
                    assert_eq!(m.segments()[1].id(), "ZZ1");
                    assert_eq!(m.segments()[1].field_count(), 0);
                    assert_eq!(m.segments()[2].get(1, 1), Some("x"));
                },
            },
        ),
    ];
    for (name, input, expect) in cases {
        check(name, &input, expect);
    }
}

fn reads_pid(m: &Message) {
    assert_eq!(m.control_id(), Some("C1"));
    let pid = m.first("PID").unwrap();
    assert_eq!(pid.index(), 2);
    assert_eq!(pid.get(5, 1), Some("SECRET"));
    assert_eq!(m.segments().last().unwrap().id(), "PV1");
}

#[test]
fn segment_endings_bom_and_whitespace() {
    let body = [MSH, "PID|1||123||SECRET^Ann", "PV1|1|I"];
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "CR endings",
            msg(&body, "\r"),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "LF endings",
            msg(&body, "\n"),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "CRLF endings",
            msg(&body, "\r\n"),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "no final ending",
            body.join("\r").into_bytes(),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "byte-order mark",
            [b"\xEF\xBB\xBF".to_vec(), msg(&body, "\r")].concat(),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "byte-order mark and CRLF",
            [b"\xEF\xBB\xBF".to_vec(), msg(&body, "\r\n")].concat(),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "blank lines and trailing whitespace",
            [
                b"\r\n\n".to_vec(),
                msg(&body, "\r\n\r\n"),
                b"  \t\n\r".to_vec(),
            ]
            .concat(),
            Parses {
                segments: 3,
                then: reads_pid,
            },
        ),
        (
            "LF inside a value when CR ends segments",
            msg(&[MSH, "OBX|1|TX|||line one\nline two", "PID|1"], "\r"),
            Parses {
                segments: 3,
                then: |m| {
                    let obx = m.first("OBX").unwrap();
                    assert_eq!(obx.get(5, 1), Some("line one\nline two"));
                },
            },
        ),
        (
            "trailing spaces in a value are data",
            msg(&[MSH, "PID|1||123 "], "\r"),
            Parses {
                segments: 2,
                then: |m| assert_eq!(m.first("PID").unwrap().get(3, 1), Some("123 ")),
            },
        ),
    ];
    for (name, input, expect) in cases {
        check(name, &input, expect);
    }
}

#[test]
fn delimiters_escapes_and_character_sets() {
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "custom delimiters",
            msg(
                &[
                    "MSH#$%!*#APP#FAC#R#RF#2024##ADT$A01#C1#P#2.4",
                    "PID#1##123$$$NHS%9*X$AA!T!B!S!C#SECRET*Two$Ann",
                ],
                "\r",
            ),
            Parses {
                segments: 2,
                then: |m| {
                    let d = m.delimiters();
                    assert_eq!(
                        (d.field, d.component, d.repetition, d.escape, d.subcomponent),
                        (b'#', b'$', b'%', b'!', b'*')
                    );
                    assert_eq!(m.message_type().trigger, "A01");
                    assert_eq!(m.version(), Some("2.4"));
                    let pid = m.first("PID").unwrap();
                    assert_eq!(pid.get_sub(3, 1, 4, 1), Some("NHS"));
                    assert_eq!(pid.get_sub(3, 2, 1, 1), Some("9"));
                    assert_eq!(pid.get_sub(3, 2, 1, 2), Some("X"));
                    assert_eq!(pid.get_sub(3, 2, 2, 1), Some("AA*B$C"));
                    assert_eq!(pid.get_sub(4, 1, 1, 2), Some("Two"));
                    assert_eq!(m.msh().get(2, 1), Some("$%!*"));
                },
            },
        ),
        (
            "truncation character (2.7)",
            msg(
                &[
                    "MSH|^~\\&#|A|F|R|RF|2024||ADT^A01|C1|P|2.7",
                    "NTE|1||50\\P\\ off SECRET#",
                ],
                "\r",
            ),
            Parses {
                segments: 2,
                then: |m| {
                    assert_eq!(m.delimiters().truncation, Some(b'#'));
                    assert_eq!(m.first("NTE").unwrap().get(3, 1), Some("50# off SECRET#"));
                },
            },
        ),
        (
            "every escape sequence",
            msg(
                &[
                    MSH,
                    "NTE|1||\\F\\\\S\\\\T\\\\R\\\\E\\|\\X41C3A9\\\\.br\\B\\H\\C\\N\\|\\Q\\ \\Cxxyy\\ \\Zab\\ open\\E",
                ],
                "\r",
            ),
            Parses {
                segments: 2,
                then: |m| {
                    let nte = m.first("NTE").unwrap();
                    assert_eq!(nte.get(3, 1), Some("|^&~\\"));
                    assert_eq!(nte.get(4, 1), Some("A\u{e9}\nBC"));
                    assert_eq!(nte.get(5, 1), Some("\\Q\\ \\Cxxyy\\ \\Zab\\ open\\E"));
                },
            },
        ),
        (
            "Latin-1 bytes",
            [MSH.as_bytes(), b"\rPID|1||123||M\xFCller^Ren\xE9e\x92s\r"].concat(),
            Parses {
                segments: 2,
                then: |m| {
                    assert!(m.charset_fallback());
                    let pid = m.first("PID").unwrap();
                    assert_eq!(pid.get(5, 1), Some("M\u{fc}ller"));
                    assert_eq!(pid.get(5, 2), Some("Ren\u{e9}e\u{2019}s"));
                },
            },
        ),
        (
            "UTF-8 stays UTF-8",
            msg(&[MSH, "PID|1||123||M\u{fc}ller^\u{10d}"], "\r"),
            Parses {
                segments: 2,
                then: |m| {
                    assert!(!m.charset_fallback());
                    assert_eq!(m.first("PID").unwrap().get(5, 2), Some("\u{10d}"));
                },
            },
        ),
        (
            "explicit null and empty fields",
            msg(&[MSH, "PID|1|\"\"|||^^|~"], "\r"),
            Parses {
                segments: 2,
                then: |m| {
                    let pid = m.first("PID").unwrap();
                    assert!(pid.field(2).unwrap().is_null());
                    assert!(pid.field(3).unwrap().is_empty());
                    assert!(pid.field(5).unwrap().is_empty());
                    assert_eq!(pid.field(5).unwrap().repetitions().len(), 1);
                    assert_eq!(pid.repetitions(6).len(), 2);
                    assert_eq!(pid.get(5, 1), None);
                    assert_eq!(pid.field(7), None);
                },
            },
        ),
    ];
    for (name, input, expect) in cases {
        check(name, &input, expect);
    }
}

#[test]
fn versions_2_3_to_2_8_pass_the_gate() {
    let with_version = |v: &str| {
        format!("MSH|^~\\&|A|F|R|RF|2024||ADT^A01|C1|P|{v}\rPID|1||SECRET\r").into_bytes()
    };
    let ok = Parses {
        segments: 2,
        then: nothing,
    };
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("2.3", with_version("2.3"), ok),
        (
            "2.3.1",
            with_version("2.3.1"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.4",
            with_version("2.4"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.5.1",
            with_version("2.5.1"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.6",
            with_version("2.6"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.7.1",
            with_version("2.7.1"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.8.2 with components",
            with_version("2.8.2^GBR"),
            Parses {
                segments: 2,
                then: nothing,
            },
        ),
        (
            "2.2",
            with_version("2.2"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "2.9",
            with_version("2.9"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "3.0",
            with_version("3.0"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "2.10",
            with_version("2.10"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "2",
            with_version("2"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "text",
            with_version("SECRET"),
            Unsupported(ErrorCode::UnsupportedVersion),
        ),
        (
            "missing",
            with_version(""),
            Unsupported(ErrorCode::RequiredFieldMissing),
        ),
        (
            "header only",
            b"MSH|^~\\&".to_vec(),
            Unsupported(ErrorCode::RequiredFieldMissing),
        ),
    ];
    for (name, input, expect) in cases {
        check(name, &input, expect);
    }
    let old = Message::parse(&with_version("2.2")).unwrap();
    let error = check_supported(&old).unwrap_err();
    assert!(error.message.contains("2.2"), "{error}");
}
