//! Fuzz target `parse`: arbitrary bytes through everything in `concord-hl7v2` that reads input.
//!
//! Owns the fuzzing harness only. Checks: nothing panics; a message that parses encodes and parses
//! back equal, and encodes the same way again; every ACK the crate builds parses; the MLLP deframer
//! never returns more bytes than it was given. Does not: check values (the crate's tests do).

#![no_main]

use concord_hl7v2::ack::{self, AckCode};
use concord_hl7v2::mllp::Deframer;
use concord_hl7v2::{Message, check_supported};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(message) => {
            let _ = check_supported(&message);
            let _ = message.message_type();
            let encoded = message.encode();
            let again = Message::parse(&encoded).expect("an encoded message parses");
            assert_eq!(again, message, "encode then parse gives the message back");
            assert_eq!(again.encode(), encoded, "encoding is stable");
            let reply = ack::build(&message, AckCode::AE, &[], "FUZZ", "20240101");
            Message::parse(&reply).expect("an ACK parses");
        }
        Err(error) => {
            let reply = ack::reject_unparseable(data, &error, "FUZZ", "20240101");
            Message::parse(&reply).expect("an AR ACK parses");
        }
    }

    let mut deframer = Deframer::new(256);
    let (head, tail) = data.split_at(data.len() / 2);
    let mut out = 0;
    for part in [head, tail] {
        deframer.push(part);
        while let Some(result) = deframer.next_message() {
            if let Ok(message) = result {
                out += message.len();
            }
        }
    }
    assert!(out <= data.len());
});
