//! The state of mapping one message: options, the Bundle being built, warnings, and the helpers
//! every segment map shares (identifier systems, dates, positions for messages).
//!
//! Owns: the identifier system base of the source, the `meta.source` of every resource, the
//! conversion of v2 times with warnings, and the error constructors. Does not: map any segment.

use std::collections::{BTreeMap, BTreeSet};

use concord_hl7v2::{ErrorCode, Message, Segment};
use serde_json::{Value, json};

use crate::bundle::{Builder, Key, percent_encode};
use crate::time::{Dtm, NoTime, offset_of};
use crate::{MapError, MapOptions, Mapped, Merge};

pub(crate) struct Ctx<'m> {
    pub msg: &'m Message,
    pub opts: &'m MapOptions,
    /// Base of every identifier system this source mints (`{base}/id/MR`, `{base}/allergy`).
    pub base: String,
    /// The offset of MSH-7, for times without one when no local rule is configured.
    msh_offset: Option<i32>,
    pub bundle: Builder,
    pub warnings: Vec<String>,
    pub patient_key: Option<Key>,
    pub merges: Vec<Merge>,
    /// `meta.source` of every resource: the source and the message control id.
    meta_source: String,
    /// The positions of the segments a map used; the others are listed in one warning.
    used: BTreeSet<usize>,
}

impl<'m> Ctx<'m> {
    pub(crate) fn new(msg: &'m Message, opts: &'m MapOptions) -> Self {
        let base = system_base(&opts.source_system);
        let msh_offset = msg.msh().get(7, 1).and_then(offset_of);
        let meta_source = match msg.control_id().map(str::trim).filter(|c| !c.is_empty()) {
            Some(id) => format!("{base}#{}", percent_encode(id)),
            None => base.clone(),
        };
        Ctx {
            msg,
            opts,
            base,
            msh_offset,
            bundle: Builder::default(),
            warnings: Vec::new(),
            patient_key: None,
            merges: Vec::new(),
            meta_source,
            used: BTreeSet::new(),
        }
    }

    pub(crate) fn warn(&mut self, text: impl Into<String>) {
        self.warnings.push(text.into());
    }

    /// Notes that a segment was mapped (the others are reported as not mapped).
    pub(crate) fn used(&mut self, seg: &Segment) {
        self.used.insert(seg.index());
    }

    /// The system for identifiers a source assigns under a namespace (an assigning authority's
    /// name, an identifier type, or a default such as `visit`).
    pub(crate) fn id_system(&self, namespace: &str) -> String {
        format!("{}/id/{}", self.base, slug(namespace))
    }

    /// The system of keys this mapping derives for one kind of resource.
    pub(crate) fn derived_system(&self, kind: &str) -> String {
        format!("{}/{kind}", self.base)
    }

    /// The system for a source's local code system name (a CWE.3 that is not a known one).
    pub(crate) fn local_code_system(&self, name: &str) -> String {
        format!("{}/CodeSystem/{}", self.base, slug(name))
    }

    /// `meta` for a new resource.
    pub(crate) fn meta(&self) -> Value {
        json!({"source": self.meta_source})
    }

    /// A FHIR `dateTime` from a v2 value; warns (naming `at`, never the value) when the value
    /// is not a date or had to lose its time for want of an offset.
    pub(crate) fn date_time(&mut self, raw: Option<&str>, at: &str) -> Option<String> {
        let raw = raw?;
        let Some(dtm) = Dtm::parse(raw) else {
            self.warn(format!("{at}: not a valid date/time; left out"));
            return None;
        };
        match dtm.date_time(self.opts.local_time, self.msh_offset) {
            Ok(v) => Some(v),
            Err(NoTime::NoOffset) => {
                self.warn(format!(
                    "{at}: a time without a UTC offset (and none configured or in MSH-7); kept the date only"
                ));
                Some(dtm.date())
            }
        }
    }

    /// A FHIR `date` from a v2 value (the time, if any, is dropped).
    pub(crate) fn date(&mut self, raw: Option<&str>, at: &str) -> Option<String> {
        let raw = raw?;
        match Dtm::parse(raw) {
            Some(d) => Some(d.date()),
            None => {
                self.warn(format!("{at}: not a valid date; left out"));
                None
            }
        }
    }

    /// A FHIR `instant` (full date and time with offset), or `None` with a warning.
    pub(crate) fn instant(&mut self, raw: Option<&str>, at: &str) -> Option<String> {
        let raw = raw?;
        let Some(dtm) = Dtm::parse(raw) else {
            self.warn(format!("{at}: not a valid date/time; left out"));
            return None;
        };
        let v = dtm.instant(self.opts.local_time, self.msh_offset);
        if v.is_none() {
            self.warn(format!(
                "{at}: not precise enough for an instant (needs a time and a UTC offset); left out"
            ));
        }
        v
    }

    /// The FHIR `instant` of an already parsed value (no warning when it is not precise enough).
    pub(crate) fn dtm_instant(&self, d: &Dtm) -> Option<String> {
        d.instant(self.opts.local_time, self.msh_offset)
    }

    /// True when the value has a time of day (so `date_time` might lose it).
    pub(crate) fn has_time(raw: &str) -> bool {
        Dtm::parse(raw).is_some_and(|d| d.has_time())
    }

    pub(crate) fn finish(mut self) -> Mapped {
        let mut unmapped: BTreeMap<&str, usize> = BTreeMap::new();
        for seg in self.msg.segments() {
            if !self.used.contains(&seg.index()) && !matches!(seg.id(), "MSH" | "SFT" | "EVN") {
                *unmapped.entry(seg.id()).or_default() += 1;
            }
        }
        if !unmapped.is_empty() {
            let list: Vec<String> = unmapped
                .iter()
                .map(|(id, n)| {
                    if *n == 1 {
                        (*id).to_string()
                    } else {
                        format!("{id} x{n}")
                    }
                })
                .collect();
            self.warnings
                .push(format!("segments not mapped: {}", list.join(", ")));
        }
        let timestamp = Some(self.opts.now.as_str()).filter(|t| !t.is_empty());
        Mapped {
            bundle: self.bundle.finish(timestamp),
            patient_key: self.patient_key.map(|k| k.token()),
            merges: self.merges,
            warnings: self.warnings,
        }
    }
}

/// The identifier system base for a source: the source itself when it is a URI, else
/// `https://concord.health/fhir/source/{code}`.
fn system_base(source: &str) -> String {
    let source = source.trim().trim_end_matches('/');
    if source.contains("://") || source.starts_with("urn:") {
        source.to_string()
    } else {
        format!("https://concord.health/fhir/source/{}", slug(source))
    }
}

/// A path segment from a name: ASCII letters, digits, `.`, `_` and `-`; anything else is `-`.
pub(crate) fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".to_string()
    } else {
        s
    }
}

/// `PID-3` plus the segment's position, for warnings and errors (never a value).
pub(crate) fn at(seg: &Segment, field: usize) -> String {
    format!("{}-{field} (segment {})", seg.id(), seg.index())
}

pub(crate) fn error(
    seg: &Segment,
    field: Option<usize>,
    code: ErrorCode,
    message: impl Into<String>,
) -> MapError {
    MapError {
        segment: seg.id().to_string(),
        index: seg.index(),
        field,
        code,
        message: message.into(),
    }
}

/// The error for a required segment that is not in the message.
pub(crate) fn missing_segment(id: &str, why: &str) -> MapError {
    MapError {
        segment: id.to_string(),
        index: 0,
        field: None,
        code: ErrorCode::SegmentSequence,
        message: format!("required segment {id} is missing: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        assert_eq!(system_base("RX1"), "https://concord.health/fhir/source/RX1");
        assert_eq!(
            system_base("https://trust.example/ids/"),
            "https://trust.example/ids"
        );
        assert_eq!(slug("GOOD HEALTH HOSPITAL"), "GOOD-HEALTH-HOSPITAL");
    }
}
