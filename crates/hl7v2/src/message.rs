//! The parsed message: segments, fields, repetitions, components and subcomponents, with
//! 1-based accessors numbered as HL7 numbers them, and constructors for building one.
//!
//! Owns the message model and its invariants: the first segment is the only MSH; MSH-1 and MSH-2
//! always hold the message's own delimiters; values are stored unescaped; an empty level is stored
//! as no children (an empty field has no repetitions), so a built message and its re-parsed
//! encoding compare equal. Does not: parse (see `parse`), encode (see `encode`) or know any
//! segment's meaning beyond the MSH header fields.

use crate::delimiters::Delimiters;
use crate::error::{ErrorCode, ParseError};

/// An HL7 v2 message: its delimiters and its segments, MSH first.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) delimiters: Delimiters,
    pub(crate) segments: Vec<Segment>,
    pub(crate) charset_fallback: bool,
}

/// Two messages are equal when their delimiters and segments are; how the bytes were decoded does
/// not count.
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.delimiters == other.delimiters && self.segments == other.segments
    }
}

impl Eq for Message {}

/// MSH-9: message code (ADT), trigger event (A01) and message structure (ADT_A01); each may be
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageType {
    pub code: String,
    pub trigger: String,
    pub structure: String,
}

/// One segment: a three-character id and its fields. For MSH, field 1 is the field separator and
/// field 2 the encoding characters, as the standard numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub(crate) id: String,
    pub(crate) index: usize,
    pub(crate) fields: Vec<Field>,
}

/// One field: its repetitions (none when the field is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    pub(crate) repetitions: List<Repetition>,
}

/// One repetition of a field: its components (none when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repetition {
    pub(crate) components: List<Component>,
}

/// One component: its subcomponents, unescaped (none when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    pub(crate) subcomponents: List<String>,
}

/// The children of one level. Almost every level has exactly one child (a field without
/// repetitions, a component without subcomponents), so one child is held inline: a plain value
/// costs one allocation (its text) instead of four.
#[derive(Debug, Clone)]
pub(crate) enum List<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> List<T> {
    pub(crate) fn from_vec(mut items: Vec<T>) -> Self {
        match items.pop() {
            Some(only) if items.is_empty() => List::One(only),
            Some(last) => {
                items.push(last);
                List::Many(items)
            }
            None => List::Many(items),
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            List::One(only) => std::slice::from_ref(only),
            List::Many(items) => items,
        }
    }

    pub(crate) fn first(&self) -> Option<&T> {
        self.as_slice().first()
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.as_slice().get(index)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::Many(Vec::new())
    }
}

/// Equal when the children are, however they are held.
impl<T: PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for List<T> {}

/// The MSH returned by [`Message::msh`] if the invariant "MSH first" were ever broken.
static NO_SEGMENT: Segment = Segment {
    id: String::new(),
    index: 0,
    fields: Vec::new(),
};

impl Message {
    /// Builds a message from segments (see [`Segment::new`]). The first must be the only MSH; its
    /// fields 1 and 2 are set from `delimiters` whatever they held. Segments are numbered in
    /// order. Errors name the first rule broken.
    pub fn new(delimiters: Delimiters, mut segments: Vec<Segment>) -> Result<Message, ParseError> {
        delimiters.validate()?;
        match segments.first() {
            Some(first) if first.id == "MSH" => {}
            _ => {
                return Err(ParseError::new(
                    ErrorCode::SegmentSequence,
                    "a message must start with an MSH segment",
                ));
            }
        }
        for (i, segment) in segments.iter_mut().enumerate() {
            if !is_segment_id(&segment.id) {
                return Err(ParseError::new(
                    ErrorCode::SegmentSequence,
                    format!(
                        "segment {} does not have a three-character id (A-Z, 0-9)",
                        i + 1
                    ),
                ));
            }
            if i > 0 && segment.id == "MSH" {
                return Err(ParseError::new(
                    ErrorCode::SegmentSequence,
                    format!("segment {} is a second MSH; a message has one", i + 1),
                ));
            }
            segment.index = i + 1;
        }
        if let Some(msh) = segments.first_mut() {
            set_msh_delimiters(msh, &delimiters);
        }
        Ok(Message {
            delimiters,
            segments,
            charset_fallback: false,
        })
    }

    /// The delimiters MSH-1 and MSH-2 declare.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// Every segment, MSH first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segments with id `id`, in order.
    pub fn segments_named<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.id == id)
    }

    /// The first segment with id `id`.
    pub fn first(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id == id)
    }

    /// The message header.
    pub fn msh(&self) -> &Segment {
        self.segments.first().unwrap_or(&NO_SEGMENT)
    }

    /// MSH-9: code, trigger and structure (each empty when absent).
    pub fn message_type(&self) -> MessageType {
        let msh = self.msh();
        let part = |n| msh.get(9, n).unwrap_or_default().to_owned();
        MessageType {
            code: part(1),
            trigger: part(2),
            structure: part(3),
        }
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<&str> {
        self.msh().get(10, 1)
    }

    /// MSH-12.1, the version id (such as `2.5.1`).
    pub fn version(&self) -> Option<&str> {
        self.msh().get(12, 1)
    }

    /// MSH-3.1.
    pub fn sending_application(&self) -> Option<&str> {
        self.msh().get(3, 1)
    }

    /// MSH-4.1.
    pub fn sending_facility(&self) -> Option<&str> {
        self.msh().get(4, 1)
    }

    /// MSH-5.1.
    pub fn receiving_application(&self) -> Option<&str> {
        self.msh().get(5, 1)
    }

    /// MSH-6.1.
    pub fn receiving_facility(&self) -> Option<&str> {
        self.msh().get(6, 1)
    }

    /// MSH-7.1, the message date/time as sent.
    pub fn timestamp(&self) -> Option<&str> {
        self.msh().get(7, 1)
    }

    /// MSH-11.1, the processing id (P, T, D).
    pub fn processing_id(&self) -> Option<&str> {
        self.msh().get(11, 1)
    }

    /// MSH-15, accept acknowledgement type (enhanced mode when present).
    pub fn accept_ack_type(&self) -> Option<&str> {
        self.msh().get(15, 1)
    }

    /// MSH-16, application acknowledgement type (enhanced mode when present).
    pub fn application_ack_type(&self) -> Option<&str> {
        self.msh().get(16, 1)
    }

    /// Whether the sender asked for enhanced-mode acknowledgement (MSH-15 or MSH-16 present).
    pub fn enhanced_ack_mode(&self) -> bool {
        self.accept_ack_type().is_some() || self.application_ack_type().is_some()
    }

    /// MSH-18.1, the character set the sender declared (informational: see the crate docs).
    pub fn character_set(&self) -> Option<&str> {
        self.msh().get(18, 1)
    }

    /// Whether some bytes were not UTF-8 and were read as Windows-1252.
    pub fn charset_fallback(&self) -> bool {
        self.charset_fallback
    }
}

fn set_msh_delimiters(msh: &mut Segment, delimiters: &Delimiters) {
    while msh.fields.len() < 2 {
        msh.fields.push(Field::default());
    }
    msh.fields[0] = Field::from_text(char::from(delimiters.field).to_string());
    msh.fields[1] = Field::from_text(delimiters.encoding_characters());
}

/// Three characters, each an ASCII capital letter or digit.
pub(crate) fn is_segment_id(id: &str) -> bool {
    id.len() == 3
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Segment {
    /// A segment with `fields` as fields 1, 2, ... (for MSH, fields 1 and 2 are replaced by the
    /// delimiters when the message is built). Its position is set by [`Message::new`].
    pub fn new(id: impl Into<String>, fields: Vec<Field>) -> Segment {
        Segment {
            id: id.into(),
            index: 0,
            fields,
        }
    }

    /// The three-character segment id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// 1-based position in the message (for ERR-2 and error messages).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Field `n` (1-based); `None` past the last field the segment carries.
    pub fn field(&self, n: usize) -> Option<&Field> {
        self.fields.get(n.checked_sub(1)?)
    }

    /// Every field, field 1 first.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// How many fields the segment carries (for MSH, MSH-1 and MSH-2 included).
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// First repetition's component, first subcomponent, unescaped; `None` when absent or empty.
    pub fn get(&self, field: usize, component: usize) -> Option<&str> {
        self.field(field)?.first()?.component(component)
    }

    /// One subcomponent (all positions 1-based); `None` when absent or empty.
    pub fn get_sub(&self, field: usize, rep: usize, component: usize, sub: usize) -> Option<&str> {
        self.field(field)?
            .repetitions
            .get(rep.checked_sub(1)?)?
            .components
            .get(component.checked_sub(1)?)?
            .subcomponent(sub)
    }

    /// The repetitions of field `field`; empty when the field is absent or empty.
    pub fn repetitions(&self, field: usize) -> &[Repetition] {
        self.field(field).map_or(&[], Field::repetitions)
    }
}

impl Field {
    /// A field from its repetitions; a single empty repetition is stored as none.
    pub fn new(repetitions: Vec<Repetition>) -> Field {
        Field::from_list(List::from_vec(repetitions))
    }

    pub(crate) fn from_list(repetitions: List<Repetition>) -> Field {
        match repetitions {
            List::One(only) if only.components.is_empty() => Field::default(),
            repetitions => Field { repetitions },
        }
    }

    /// A field holding one plain value (not escaped: the encoder escapes it).
    pub fn from_text(text: impl Into<String>) -> Field {
        Field::new(vec![Repetition::from_text(text)])
    }

    /// A field of one repetition with these components, each one plain value.
    pub fn from_components<S: Into<String>>(components: impl IntoIterator<Item = S>) -> Field {
        Field::new(vec![Repetition::new(
            components
                .into_iter()
                .map(|c| Component::new(vec![c.into()]))
                .collect(),
        )])
    }

    /// The repetitions, none when the field is empty.
    pub fn repetitions(&self) -> &[Repetition] {
        self.repetitions.as_slice()
    }

    /// The first repetition.
    pub fn first(&self) -> Option<&Repetition> {
        self.repetitions.first()
    }

    /// Whether the field holds no text at all.
    pub fn is_empty(&self) -> bool {
        self.repetitions().iter().all(Repetition::is_empty)
    }

    /// Whether the field is HL7's explicit null `""` (the sender says: delete the value).
    pub fn is_null(&self) -> bool {
        matches!(self.repetitions(), [rep]
            if matches!(rep.components(), [c]
                if matches!(c.subcomponents(), [s] if s == "\"\"")))
    }

    /// The first repetition's first component's first subcomponent, or `""`.
    pub fn text(&self) -> &str {
        self.first()
            .and_then(|r| r.components.first())
            .map_or("", Component::text)
    }
}

impl Repetition {
    /// A repetition from its components; a single empty component is stored as none.
    pub fn new(components: Vec<Component>) -> Repetition {
        Repetition::from_list(List::from_vec(components))
    }

    pub(crate) fn from_list(components: List<Component>) -> Repetition {
        match components {
            List::One(only) if only.subcomponents.is_empty() => Repetition::default(),
            components => Repetition { components },
        }
    }

    /// A repetition holding one plain value.
    pub fn from_text(text: impl Into<String>) -> Repetition {
        Repetition::new(vec![Component::new(vec![text.into()])])
    }

    /// Component `n` (1-based), first subcomponent; `None` when absent or empty.
    pub fn component(&self, n: usize) -> Option<&str> {
        self.components.get(n.checked_sub(1)?)?.subcomponent(1)
    }

    /// Every component.
    pub fn components(&self) -> &[Component] {
        self.components.as_slice()
    }

    /// Whether the repetition holds no text at all.
    pub fn is_empty(&self) -> bool {
        self.components().iter().all(Component::is_empty)
    }
}

impl Component {
    /// A component from its subcomponents (plain values); a single empty one is stored as none.
    pub fn new(subcomponents: Vec<String>) -> Component {
        Component::from_list(List::from_vec(subcomponents))
    }

    pub(crate) fn from_list(subcomponents: List<String>) -> Component {
        match subcomponents {
            List::One(only) if only.is_empty() => Component::default(),
            subcomponents => Component { subcomponents },
        }
    }

    /// Subcomponent `n` (1-based); `None` when absent or empty.
    pub fn subcomponent(&self, n: usize) -> Option<&str> {
        self.subcomponents
            .get(n.checked_sub(1)?)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Every subcomponent.
    pub fn subcomponents(&self) -> &[String] {
        self.subcomponents.as_slice()
    }

    /// The first subcomponent, or `""`.
    pub fn text(&self) -> &str {
        self.subcomponents.first().map_or("", String::as_str)
    }

    /// Whether the component holds no text at all.
    pub fn is_empty(&self) -> bool {
        self.subcomponents().iter().all(String::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msh() -> Segment {
        Segment::new(
            "MSH",
            vec![Field::default(), Field::default(), Field::from_text("APP")],
        )
    }

    #[test]
    fn new_checks_the_invariants() {
        let d = Delimiters::default();
        let m = Message::new(d, vec![msh(), Segment::new("PID", vec![])]).unwrap();
        assert_eq!(m.msh().get(1, 1), Some("|"));
        assert_eq!(m.sending_application(), Some("APP"));
        assert_eq!(m.segments()[1].index(), 2);
        let code = |r: Result<Message, ParseError>| r.unwrap_err().code;
        assert_eq!(code(Message::new(d, vec![])), ErrorCode::SegmentSequence);
        assert_eq!(
            code(Message::new(d, vec![Segment::new("PID", vec![])])),
            ErrorCode::SegmentSequence
        );
        assert_eq!(
            code(Message::new(d, vec![msh(), msh()])),
            ErrorCode::SegmentSequence
        );
        assert_eq!(
            code(Message::new(d, vec![msh(), Segment::new("pid", vec![])])),
            ErrorCode::SegmentSequence
        );
        let same = Delimiters {
            component: b'|',
            ..d
        };
        assert_eq!(code(Message::new(same, vec![msh()])), ErrorCode::DataType);
    }

    #[test]
    fn empty_levels_are_stored_as_none() {
        assert_eq!(Field::from_text(""), Field::default());
        assert_eq!(Field::new(vec![Repetition::new(vec![])]), Field::default());
        assert_eq!(Component::new(vec![String::new()]).subcomponents().len(), 0);
        let two = Component::new(vec![String::new(), String::new()]);
        assert_eq!(two.subcomponents().len(), 2);
        assert!(two.is_empty());
        assert_eq!(
            Field::from_components(["a", "b"])
                .first()
                .unwrap()
                .component(2),
            Some("b")
        );
        assert_eq!(Field::from_text("x").text(), "x");
    }
}
