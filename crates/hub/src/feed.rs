//! Inbound HL7 v2: one message in, one acknowledgement out, nothing a source sends lost
//! (HL7 v2.x chapter 2, acknowledgement rules; v2-to-FHIR for the mapping).
//!
//! Owns the order of a message's life: parse, check the version, map to a FHIR transaction and
//! prepare it (outside the store's writer), then log the raw message, apply the transaction
//! through the ordinary transaction path and mark it applied, all in one unit of work of the
//! store (one commit, which the store shares with the other messages waiting at that moment), and
//! link its Patients to the master patient index after that commit. The message log is unique
//! per sender and control id, so a repeat is acknowledged again as before and not applied twice.
//! A message whose resources the store refuses is logged on its own as a dead letter, kept with
//! its error for `concord feed dead-letters`; every acknowledgement is built only after the
//! message is durably logged. Original mode answers AA / AE / AR after applying; enhanced mode
//! (MSH-15 present) answers CA once the message is durably logged (CR when it could not be),
//! whatever the application outcome, which the log keeps. One person's messages take turns
//! (`FeedTurns`): logging and applying a message happen under that person's turn, so across many
//! connections the order they are logged in is the order they are applied in. Does not frame
//! bytes (the MLLP and HTTP transports do) or parse or map (the hl7v2 and v2fhir crates do).

use concord_fhir::primitive::format_instant;
use concord_fhir::{Error, RequestContext};
use concord_hl7v2::ack::{self, AckCode};
use concord_hl7v2::{ErrorCode, Message, ParseError};
use concord_store::{Appended, LoggedMessage, MessageStatus, NewMessage};

use crate::Hub;

/// Settings of the v2 feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// The sending organisation's code (ODS): local identifiers get systems under it and it
    /// becomes the Patients' `managingOrganization`.
    pub source: String,
    /// How to read v2 times without a UTC offset.
    pub local_time: concord_v2fhir::LocalTime,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            source: "LOCAL".into(),
            local_time: concord_v2fhir::LocalTime::EuropeLondon,
        }
    }
}

/// The base the feed's transactions are processed against (it only appears in response links,
/// which the feed does not send anywhere).
const FEED_BASE: &str = "urn:concord:feed";

/// What logging a message found.
enum Logged {
    /// Logged now at `seq`; applied, or a dead letter with the reason.
    New {
        seq: i64,
        outcome: Result<(), ParseError>,
    },
    /// The sender already sent this control id.
    Repeat(LoggedMessage),
}

/// What became of one message, for the transport's logs and metrics (no patient data).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The acknowledgement to send back.
    pub ack: Vec<u8>,
    pub code: &'static str,
    /// Position in the message log, when the message got that far.
    pub seq: Option<i64>,
    pub repeat: bool,
}

impl Hub {
    /// Takes one HL7 v2 message and returns its acknowledgement. Never fails: every problem is an
    /// AE or AR naming the segment, field and reason. Errors of the log itself (the disk) are the
    /// one case answered AR with "try again", since nothing was stored.
    pub fn receive_v2(&self, ctx: &RequestContext, raw: &[u8]) -> Received {
        let now = self.clock.now_ms();
        let timestamp = hl7_timestamp(now);
        let ack_id = ack_control_id();
        let message = match Message::parse(raw) {
            Ok(m) => m,
            Err(error) => {
                return Received {
                    ack: ack::reject_unparseable(raw, &error, &ack_id, &timestamp),
                    code: "AR",
                    seq: None,
                    repeat: false,
                };
            }
        };
        let enhanced = message.accept_ack_type().is_some();
        let reject = |error: ParseError| Received {
            ack: ack::build(
                &message,
                if enhanced { AckCode::CR } else { AckCode::AR },
                &[error],
                &ack_id,
                &timestamp,
            ),
            code: if enhanced { "CR" } else { "AR" },
            seq: None,
            repeat: false,
        };
        if let Err(error) = concord_hl7v2::check_supported(&message) {
            return reject(error);
        }
        let Some(control_id) = message.control_id().map(str::to_string) else {
            return reject(required(
                "MSH",
                1,
                10,
                "MSH-10 (message control id) is required",
            ));
        };
        let sender = format!(
            "{}|{}",
            message.sending_application().unwrap_or_default(),
            message.sending_facility().unwrap_or_default()
        );
        let kind = message.message_type();
        if self.messages.is_none() {
            return reject(application(
                "the message could not be stored; send it again",
            ));
        }
        let new_message = NewMessage {
            sender,
            control_id,
            message_type: format!("{}^{}", kind.code, kind.trigger),
            received_at: now,
            raw: raw.to_vec(),
        };
        // Mapping and checking the resources need no store, so they run before the person's
        // turn and outside the store's writer, in parallel with other connections' messages.
        let prepared = self.map_v2(ctx, &message);
        // Held until the message is applied: another connection's message for the same person
        // waits, so it is logged, and then applied, after this one.
        let _turn = self.feed_turns.take(&person_key(&message));
        let (seq, outcome) = match self.log_and_apply(ctx, &message, &new_message, prepared) {
            Ok(Logged::New { seq, outcome }) => (seq, outcome),
            Ok(Logged::Repeat(previous)) if same_message(&previous.raw, raw) => {
                return self.answer_repeat(&message, &previous, &ack_id, &timestamp);
            }
            Ok(Logged::Repeat(previous)) => {
                // The sender reused a control id for another message. Applying it could
                // double-apply a resend; dropping it could lose data. Keep it for a person.
                return self.keep_conflict(ctx, &message, &previous, raw, now, &ack_id, &timestamp);
            }
            Err(_) => {
                return reject(application(
                    "the message could not be stored; send it again",
                ));
            }
        };
        if enhanced {
            // Accepted once durable; the application outcome is in the log.
            return Received {
                ack: ack::build(&message, AckCode::CA, &[], &ack_id, &timestamp),
                code: "CA",
                seq: Some(seq),
                repeat: false,
            };
        }
        match outcome {
            Ok(()) => Received {
                ack: ack::build(&message, AckCode::AA, &[], &ack_id, &timestamp),
                code: "AA",
                seq: Some(seq),
                repeat: false,
            },
            Err(error) => Received {
                ack: ack::build(&message, AckCode::AE, &[error], &ack_id, &timestamp),
                code: "AE",
                seq: Some(seq),
                repeat: false,
            },
        }
    }

    /// Logs a message and applies it in one unit of work of the store (one commit, shared with
    /// the other messages waiting at that moment), with its status `applied`; the Patients it
    /// wrote are linked in the same unit. When the store refuses the mapped resources, that unit
    /// is rolled back whole and the message is logged again on its own as a dead letter. Returns
    /// only once the message is durable; an error means it is not in the log.
    ///
    /// The unit can run again (`write_linked_repeatable`), so the store need not isolate it from
    /// the other messages of its commit: if it is undone by another's failure, it maps the
    /// message again and starts over.
    fn log_and_apply(
        &self,
        ctx: &RequestContext,
        message: &Message,
        new_message: &NewMessage,
        prepared: Result<crate::transaction::PreparedTransaction, ParseError>,
    ) -> Result<Logged, Error> {
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return self.log_dead_letter(ctx, new_message, error),
        };
        let mut prepared = Some(prepared);
        let mut logged = None;
        let mut refused = None;
        let applied = self.write_linked_repeatable(ctx, &mut |tx| {
            logged = None;
            refused = None;
            let seq = match tx.append_message(new_message.clone())? {
                Appended::New(seq) => seq,
                Appended::Repeat(previous) => {
                    logged = Some(Logged::Repeat(previous));
                    return Ok(());
                }
            };
            // The first run applies what was prepared outside the writer; a second run (after
            // another unit's failure undid this one) prepares the message again.
            let prepared = match prepared.take() {
                Some(prepared) => prepared,
                None => self.map_v2(ctx, message).map_err(|error| {
                    refused = Some(error);
                    Error::new(
                        concord_fhir::ErrorKind::Unprocessable,
                        "the message could not be mapped again",
                    )
                })?,
            };
            if let Err(error) = self.apply_transaction(tx, prepared) {
                refused = Some(application(&format!(
                    "the mapped resources were refused: {}",
                    first_diagnostic(&error)
                )));
                return Err(error);
            }
            tx.set_message_status(seq, MessageStatus::Applied, None, "AA")?;
            logged = Some(Logged::New {
                seq,
                outcome: Ok(()),
            });
            Ok(())
        });
        match (applied, refused) {
            (Ok(()), _) => logged.ok_or_else(Error::internal),
            (Err(_), Some(error)) => self.log_dead_letter(ctx, new_message, error),
            (Err(error), None) => Err(error),
        }
    }

    /// Logs a message that cannot be applied as a dead letter, in one unit of work.
    fn log_dead_letter(
        &self,
        ctx: &RequestContext,
        new_message: &NewMessage,
        error: ParseError,
    ) -> Result<Logged, Error> {
        let mut logged = None;
        self.store.write(ctx, &mut |tx| {
            logged = Some(match tx.append_message(new_message.clone())? {
                Appended::New(seq) => {
                    tx.set_message_status(
                        seq,
                        MessageStatus::DeadLetter,
                        Some(&error.message),
                        "AE",
                    )?;
                    Logged::New {
                        seq,
                        outcome: Err(error.clone()),
                    }
                }
                Appended::Repeat(previous) => Logged::Repeat(previous),
            });
            Ok(())
        })?;
        logged.ok_or_else(Error::internal)
    }

    /// Maps a message to a transaction and prepares it; an error names the segment and field.
    fn map_v2(
        &self,
        ctx: &RequestContext,
        message: &Message,
    ) -> Result<crate::transaction::PreparedTransaction, ParseError> {
        let options = concord_v2fhir::MapOptions {
            source_system: self.config.feed.source.clone(),
            now: format_instant(self.clock.now_ms()),
            local_time: self.config.feed.local_time,
        };
        let mapped = concord_v2fhir::map_message(message, &options).map_err(|e| ParseError {
            segment: Some((e.segment.clone(), e.index)),
            field: e.field,
            code: e.code,
            message: e.message.clone(),
        })?;
        self.prepare_transaction(ctx, &mapped.bundle).map_err(|e| {
            application(&format!(
                "the mapped resources were refused: {}",
                first_diagnostic(&e)
            ))
        })
    }

    /// Maps and applies a logged message, recording the outcome in the log.
    ///
    /// (Called under the person's turn from `receive_v2`.)
    fn apply_logged(
        &self,
        ctx: &RequestContext,
        seq: i64,
        message: &Message,
    ) -> Result<(), ParseError> {
        let outcome = self.apply_v2(ctx, message);
        let (status, error, code) = match &outcome {
            Ok(()) => (MessageStatus::Applied, None, "AA"),
            Err(e) => (MessageStatus::DeadLetter, Some(e.message.clone()), "AE"),
        };
        if let Ok(log) = self.message_log() {
            // The message is safe in the log either way; a failed status update leaves it
            // "received", which replay picks up.
            let _ = log.set_status(ctx, seq, status, error.as_deref(), code);
        }
        outcome
    }

    fn apply_v2(&self, ctx: &RequestContext, message: &Message) -> Result<(), ParseError> {
        let options = concord_v2fhir::MapOptions {
            source_system: self.config.feed.source.clone(),
            now: format_instant(self.clock.now_ms()),
            local_time: self.config.feed.local_time,
        };
        let mapped = concord_v2fhir::map_message(message, &options).map_err(|e| ParseError {
            segment: Some((e.segment.clone(), e.index)),
            field: e.field,
            code: e.code,
            message: e.message.clone(),
        })?;
        self.process_bundle(ctx, &mapped.bundle, FEED_BASE)
            .map(|_| ())
            .map_err(|e| {
                application(&format!(
                    "the mapped resources were refused: {}",
                    first_diagnostic(&e)
                ))
            })
    }

    /// Applies a dead letter (or a message left "received") again, after its cause was fixed.
    pub fn replay_message(&self, ctx: &RequestContext, seq: i64) -> Result<LoggedMessage, Error> {
        let log = self.message_log()?;
        let Some(logged) = log.get(ctx, seq)? else {
            return Err(Error::not_found(format!("message {seq} is not in the log")));
        };
        if logged.status == MessageStatus::Applied {
            return Err(Error::new(
                concord_fhir::ErrorKind::Conflict,
                format!("message {seq} was already applied"),
            ));
        }
        let message = Message::parse(&logged.raw).map_err(|e| Error::invalid(e.message))?;
        let _turn = self.feed_turns.take(&person_key(&message));
        let _ = self.apply_logged(ctx, seq, &message);
        log.get(ctx, seq)?.ok_or_else(Error::internal)
    }

    fn answer_repeat(
        &self,
        message: &Message,
        previous: &LoggedMessage,
        ack_id: &str,
        timestamp: &str,
    ) -> Received {
        if message.accept_ack_type().is_some() {
            // Enhanced mode acknowledges receipt, and the message was received before.
            return Received {
                ack: ack::build(message, AckCode::CA, &[], ack_id, timestamp),
                code: "CA",
                seq: Some(previous.seq),
                repeat: true,
            };
        }
        let (code, text) = match previous.ack_code.as_deref() {
            Some("AA") | None => (AckCode::AA, "AA"),
            Some("AR") => (AckCode::AR, "AR"),
            _ => (AckCode::AE, "AE"),
        };
        let errors: Vec<ParseError> = previous.error.iter().map(|e| application(e)).collect();
        Received {
            ack: ack::build(message, code, &errors, ack_id, timestamp),
            code: text,
            seq: Some(previous.seq),
            repeat: true,
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the pieces of one acknowledgement"
    )]
    fn keep_conflict(
        &self,
        ctx: &RequestContext,
        message: &Message,
        previous: &LoggedMessage,
        raw: &[u8],
        now: i64,
        ack_id: &str,
        timestamp: &str,
    ) -> Received {
        let error = application(&format!(
            "MSH-10 control id was already used by this sender for a different message (log entry {})",
            previous.seq
        ));
        let kept = self.message_log().and_then(|log| {
            let appended = log.append(
                ctx,
                NewMessage {
                    sender: previous.sender.clone(),
                    control_id: format!("{} (reused, {ack_id})", previous.control_id),
                    message_type: previous.message_type.clone(),
                    received_at: now,
                    raw: raw.to_vec(),
                },
            )?;
            let Appended::New(seq) = appended else {
                return Err(Error::internal());
            };
            log.set_status(
                ctx,
                seq,
                MessageStatus::DeadLetter,
                Some(&error.message),
                "AE",
            )?;
            Ok(seq)
        });
        let (code, text) = if kept.is_ok() {
            (AckCode::AE, "AE")
        } else {
            (AckCode::AR, "AR")
        };
        Received {
            ack: ack::build(message, code, &[error], ack_id, timestamp),
            code: text,
            seq: kept.ok(),
            repeat: false,
        }
    }

    /// One logged message.
    pub fn logged_message(&self, ctx: &RequestContext, seq: i64) -> Result<LoggedMessage, Error> {
        self.message_log()?
            .get(ctx, seq)?
            .ok_or_else(|| Error::not_found(format!("message {seq} is not in the log")))
    }

    /// Dead letters, oldest first.
    pub fn dead_letters(
        &self,
        ctx: &RequestContext,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedMessage>, Error> {
        self.message_log()?
            .list(ctx, MessageStatus::DeadLetter, after, limit)
    }

    fn message_log(&self) -> Result<&dyn concord_store::MessageLog, Error> {
        self.messages
            .as_deref()
            .ok_or_else(|| Error::not_supported("this node keeps no message log"))
    }
}

fn required(segment: &str, index: usize, field: usize, message: &str) -> ParseError {
    ParseError {
        segment: Some((segment.to_string(), index)),
        field: Some(field),
        code: ErrorCode::RequiredFieldMissing,
        message: message.to_string(),
    }
}

fn application(message: &str) -> ParseError {
    ParseError {
        segment: None,
        field: None,
        code: ErrorCode::ApplicationError,
        message: message.to_string(),
    }
}

/// Where and what kind of problem the hub found, for the dead letter and the ERR segment. The
/// diagnostics text is left out: validation messages can quote the value, and a dead letter's
/// error is listed to operators (the message itself is shown only on request).
fn first_diagnostic(error: &Error) -> String {
    error
        .issues
        .first()
        .map(|i| match i.expression.first() {
            Some(at) => format!("{at}: issue '{}'", i.code.code()),
            None => format!("issue '{}'", i.code.code()),
        })
        .unwrap_or_else(|| "unknown error".into())
}

/// The control id (MSH-10) of an acknowledgement: 20 upper-case hex digits, the most HL7 v2.3 to
/// v2.6 allow in MSH-10 (a UUID's 36 would be refused by a receiver that checks lengths). Taken
/// from a fresh time-ordered UUID: its 44 bits of milliseconds, then 36 of its random bits.
fn ack_control_id() -> String {
    let bits = uuid::Uuid::now_v7().as_u128();
    let millis = bits >> 80;
    let random = bits & 0xF_FFFF_FFFF;
    format!("{millis:011X}{random:09X}")
}

/// HL7 DTM `YYYYMMDDHHMMSS+0000` of epoch milliseconds.
fn hl7_timestamp(ms: i64) -> String {
    let instant = format_instant(ms); // 2024-01-02T03:04:05.678Z
    let digits: String = instant
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    format!("{digits}+0000")
}

/// A resend of the same message: equal apart from MSH-7 (engines restamp the time on resend).
fn same_message(a: &[u8], b: &[u8]) -> bool {
    fn without_time(bytes: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes);
        let mut segments = text.split(['\r', '\n']).filter(|s| !s.is_empty());
        let mut out = String::new();
        if let Some(msh) = segments.next() {
            let mut fields: Vec<&str> = msh.split('|').collect();
            if fields.len() > 6 {
                fields[6] = "";
            }
            out.push_str(&fields.join("|"));
        }
        for segment in segments {
            out.push('\r');
            out.push_str(segment);
        }
        out.into_bytes()
    }
    a == b || without_time(a) == without_time(b)
}

/// The person a message is about, as the sender identifies them: PID-3's first identifier with
/// its assigning authority. Messages without one share a turn.
fn person_key(message: &Message) -> String {
    message
        .segments_named("PID")
        .next()
        .map(|pid| {
            format!(
                "{}^{}",
                pid.get(3, 1).unwrap_or_default(),
                pid.get(3, 4).unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// Turns per person for inbound messages: a fixed set of locks, a person's key choosing one.
/// Two people may share a lock, which only makes them wait for each other; a fixed set needs no
/// clean-up, unlike a lock per person.
pub(crate) struct FeedTurns {
    locks: Vec<std::sync::Mutex<()>>,
}

impl Default for FeedTurns {
    fn default() -> Self {
        FeedTurns {
            locks: (0..64).map(|_| std::sync::Mutex::new(())).collect(),
        }
    }
}

impl FeedTurns {
    fn take(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let lock = &self.locks[(hasher.finish() % self.locks.len() as u64) as usize];
        // A panic while applying poisons the lock; the next message still gets its turn.
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
