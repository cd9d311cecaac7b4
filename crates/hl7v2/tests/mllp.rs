//! MLLP framing: frames in one push, frames split byte by byte, garbage and whitespace between
//! frames, frames over the limit, frames that never end or are cut short by a new start byte.
//!
//! Owns: the checks of `mllp::frame` and `mllp::Deframer`. Does not: test sockets (the listener
//! does).

use concord_hl7v2::mllp::{Deframer, END, MllpError, START, frame};

const A: &[u8] = b"MSH|^~\\&|A|F|R|RF|2024||ADT^A01|1|P|2.5\rPID|1\r";
const B: &[u8] = b"MSH|^~\\&|A|F|R|RF|2024||ADT^A08|2|P|2.5\r";
const C: &[u8] = b"MSH|^~\\&|A|F|R|RF|2024||ADT^A03|3|P|2.5\rPV1|1\r";

/// Everything the deframer yields until it needs more bytes.
fn drain(d: &mut Deframer) -> Vec<Result<Vec<u8>, MllpError>> {
    std::iter::from_fn(|| d.next_message()).collect()
}

#[test]
fn frame_wraps_in_start_and_end() {
    let framed = frame(b"MSH|x");
    assert_eq!(framed[0], START);
    assert!(framed.ends_with(END));
    assert_eq!(&framed[1..framed.len() - 2], b"MSH|x");
}

#[test]
fn several_messages_in_one_push() {
    let mut d = Deframer::new(1024);
    d.push(&[frame(A), frame(B), frame(C)].concat());
    assert_eq!(
        drain(&mut d),
        vec![Ok(A.to_vec()), Ok(B.to_vec()), Ok(C.to_vec())]
    );
    assert!(!d.in_frame());
    assert_eq!(d.buffered(), 0);
}

#[test]
fn a_message_split_byte_by_byte() {
    let stream = [frame(A), frame(B)].concat();
    let mut d = Deframer::new(1024);
    let mut out = Vec::new();
    for (i, byte) in stream.iter().enumerate() {
        d.push(std::slice::from_ref(byte));
        let got = drain(&mut d);
        if !got.is_empty() {
            out.push((i, got));
        }
    }
    let first_end = frame(A).len() - 1;
    assert_eq!(
        out,
        vec![
            (first_end, vec![Ok(A.to_vec())]),
            (stream.len() - 1, vec![Ok(B.to_vec())])
        ]
    );
}

#[test]
fn garbage_before_a_start_byte_is_reported_and_dropped() {
    let mut d = Deframer::new(1024);
    d.push(b"hello");
    assert_eq!(drain(&mut d), vec![Err(MllpError::GarbageBeforeStart(5))]);
    d.push(&[b"xy".to_vec(), frame(A)].concat());
    assert_eq!(
        drain(&mut d),
        vec![Err(MllpError::GarbageBeforeStart(2)), Ok(A.to_vec())]
    );
}

#[test]
fn whitespace_between_frames_is_ignored() {
    let mut d = Deframer::new(1024);
    d.push(&[frame(A), b"\r\n".to_vec(), frame(B), b"\n".to_vec()].concat());
    assert_eq!(drain(&mut d), vec![Ok(A.to_vec()), Ok(B.to_vec())]);
}

#[test]
fn an_over_limit_frame_is_reported_once_and_skipped() {
    let limit = A.len() - 1;
    // In one push.
    let mut d = Deframer::new(limit);
    d.push(&[frame(A), frame(B)].concat());
    assert_eq!(
        drain(&mut d),
        vec![Err(MllpError::TooLarge(limit)), Ok(B.to_vec())]
    );
    // Byte by byte: one error, and the buffer never holds much more than the limit.
    let mut d = Deframer::new(limit);
    let mut results = Vec::new();
    for byte in [frame(A), frame(B)].concat() {
        d.push(&[byte]);
        assert!(d.buffered() <= limit + 1);
        results.extend(drain(&mut d));
    }
    assert_eq!(
        results,
        vec![Err(MllpError::TooLarge(limit)), Ok(B.to_vec())]
    );
    // Exactly at the limit is fine.
    let mut d = Deframer::new(A.len());
    d.push(&frame(A));
    assert_eq!(drain(&mut d), vec![Ok(A.to_vec())]);
    // A large frame followed by a start byte without its end: the next frame is still read.
    let mut d = Deframer::new(limit);
    d.push(&[&[START], A, &frame(B)[..]].concat());
    assert_eq!(
        drain(&mut d),
        vec![Err(MllpError::TooLarge(limit)), Ok(B.to_vec())]
    );
}

#[test]
fn a_missing_end() {
    // The stream stops mid-frame: nothing comes out, and the deframer says a frame is open.
    let mut d = Deframer::new(1024);
    d.push(&[&[START], A].concat());
    assert_eq!(drain(&mut d), vec![]);
    assert!(d.in_frame());
    assert_eq!(d.buffered(), A.len());
    // A new start byte cuts the open frame short: reported as dropped, the new frame is read.
    d.push(&frame(B));
    assert_eq!(
        drain(&mut d),
        vec![
            Err(MllpError::GarbageBeforeStart(A.len() + 1)),
            Ok(B.to_vec())
        ]
    );
    assert!(!d.in_frame());
    // An end byte without its CR still ends the frame.
    let mut d = Deframer::new(1024);
    d.push(&[&[START], A, &[0x1c], &frame(B)[..]].concat());
    assert_eq!(drain(&mut d), vec![Ok(A.to_vec()), Ok(B.to_vec())]);
    // An end byte at the end of a push waits for the next byte.
    let mut d = Deframer::new(1024);
    d.push(&[&[START], A, &[0x1c]].concat());
    assert_eq!(drain(&mut d), vec![]);
    d.push(b"\r");
    assert_eq!(drain(&mut d), vec![Ok(A.to_vec())]);
}

#[test]
fn a_large_stream_in_chunks_is_linear() {
    let big: Vec<u8> = A.iter().copied().cycle().take(10 * 1024 * 1024).collect();
    let stream = [frame(&big), frame(B)].concat();
    let mut d = Deframer::new(16 * 1024 * 1024);
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    for chunk in stream.chunks(4096) {
        d.push(chunk);
        out.extend(drain(&mut d));
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().len(), big.len());
    assert!(
        started.elapsed().as_secs() < 10,
        "deframing 10 MB took {:?}",
        started.elapsed()
    );
}
