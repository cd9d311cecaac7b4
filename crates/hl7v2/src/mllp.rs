//! MLLP (release 2) framing: `0x0B message 0x1C 0x0D` on a byte stream.
//!
//! Owns wrapping a message in a frame ([`frame`]) and cutting frames out of a stream that arrives
//! in arbitrary pieces ([`Deframer`]). The deframer copies each byte once into its buffer, scans
//! each byte once for the end of a frame, and never holds more than one frame (up to its limit)
//! plus what the last push added. Whitespace between frames (a stray CR or LF after an end) is
//! ignored; anything else before a start byte is reported as garbage and dropped. A start byte
//! inside an open frame means the open frame was cut short: it is reported as garbage too, and
//! the new frame is read. A frame over the limit is reported once and its bytes are dropped up to
//! its end (or the next start byte). A lone 0x1C not followed by 0x0D also ends a frame (the byte after it is then read as
//! being between frames).
//!
//! Does not: read sockets, time out, or know what a stream that stopped mid-frame means (the
//! listener asks [`Deframer::in_frame`] when the connection closes).

/// Start of a frame (vertical tab).
pub const START: u8 = 0x0b;
/// End of a frame (file separator, carriage return).
pub const END: &[u8] = &[0x1c, 0x0d];

/// A framing error; the stream can go on after it (the bad bytes are dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MllpError {
    /// Bytes that were not whitespace arrived outside a frame, or a frame was cut short by a new
    /// start byte; the number of bytes dropped.
    #[error("{0} bytes outside an MLLP frame were dropped")]
    GarbageBeforeStart(usize),
    /// A frame grew past the limit (the number is the limit); it is dropped up to its end.
    #[error("an MLLP frame exceeded the limit of {0} bytes and was dropped")]
    TooLarge(usize),
}

/// Wraps a message in an MLLP frame.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(END);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// Inside a frame; the buffer holds its content so far.
    InFrame,
    /// Dropping the rest of a frame that was too large.
    Skipping,
}

/// Incremental deframer for a byte stream: push bytes, pop complete messages; errors on garbage
/// between frames or a frame larger than the limit.
#[derive(Debug, Clone)]
pub struct Deframer {
    max_message_bytes: usize,
    /// Bytes not yet consumed: between frames, the raw stream; in a frame, the content so far
    /// followed by unscanned bytes.
    buffer: Vec<u8>,
    /// In a frame: how many bytes of `buffer` are known to hold no end marker.
    scanned: usize,
    state: State,
}

impl Deframer {
    /// A deframer that rejects frames whose content exceeds `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Deframer {
            max_message_bytes,
            buffer: Vec::new(),
            scanned: 0,
            state: State::Idle,
        }
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message (without its framing), a framing error, or `None` until more
    /// bytes arrive. Call it until it returns `None` after every push.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, MllpError>> {
        loop {
            match self.state {
                State::Idle => {
                    let start = self.buffer.iter().position(|&b| b == START);
                    let dropped = start.unwrap_or(self.buffer.len());
                    let garbage = self.buffer[..dropped]
                        .iter()
                        .any(|b| !b.is_ascii_whitespace());
                    let error = MllpError::GarbageBeforeStart(dropped);
                    let Some(at) = start else {
                        self.buffer.clear();
                        return garbage.then_some(Err(error));
                    };
                    self.buffer.drain(..=at);
                    self.state = State::InFrame;
                    self.scanned = 0;
                    if garbage {
                        return Some(Err(error));
                    }
                }
                State::InFrame => return self.scan_frame(),
                State::Skipping => {
                    let Some(at) = self.buffer.iter().position(|&b| b == END[0] || b == START)
                    else {
                        self.buffer.clear();
                        return None;
                    };
                    self.state = if self.buffer[at] == START {
                        State::InFrame
                    } else {
                        State::Idle
                    };
                    self.buffer.drain(..=at);
                    self.scanned = 0;
                }
            }
        }
    }

    /// Looks for the end of the open frame in the unscanned bytes: a message, an error, or `None`
    /// to wait for more bytes.
    fn scan_frame(&mut self) -> Option<Result<Vec<u8>, MllpError>> {
        let from = self.scanned;
        let hit = self.buffer[from..]
            .iter()
            .position(|&b| b == END[0] || b == START)
            .map(|i| from + i);
        let Some(at) = hit else {
            self.scanned = self.buffer.len();
            return self.check_limit();
        };
        if at > self.max_message_bytes {
            self.scanned = at;
            return self.check_limit();
        }
        if self.buffer[at] == START {
            // A new frame began before this one ended: this one was cut short.
            let dropped = at + 1; // its start byte and content
            self.buffer.drain(..=at);
            self.scanned = 0;
            return Some(Err(MllpError::GarbageBeforeStart(dropped)));
        }
        // The first end byte; a CR after it completes the marker.
        let Some(&next) = self.buffer.get(at + 1) else {
            self.scanned = at;
            return None;
        };
        let message: Vec<u8> = self.buffer[..at].to_vec();
        let consumed = if next == END[1] { at + 2 } else { at + 1 };
        self.buffer.drain(..consumed);
        self.state = State::Idle;
        self.scanned = 0;
        Some(Ok(message))
    }

    /// Switches to skipping when the open frame has grown past the limit.
    fn check_limit(&mut self) -> Option<Result<Vec<u8>, MllpError>> {
        if self.scanned <= self.max_message_bytes {
            return None;
        }
        self.buffer.drain(..self.scanned);
        self.scanned = 0;
        self.state = State::Skipping;
        Some(Err(MllpError::TooLarge(self.max_message_bytes)))
    }

    /// Whether a frame is open (started and not ended): a connection closing now loses it.
    pub fn in_frame(&self) -> bool {
        self.state != State::Idle
    }

    /// How many bytes are held (the open frame's content so far, or unread bytes).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}
