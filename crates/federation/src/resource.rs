//! One resource as a source sent it: its top-level members kept as the source's JSON text, each
//! parsed only when something reads it.
//!
//! Owns [`Resource`]: reading one from JSON text, reading and changing its members, finding its
//! `reference`s without parsing it (by searching its text), and writing it back out. A federated
//! view passes a whole record through the hub, and the merge reads only a few members of each
//! resource (type, id, `meta`, identifiers, codes, dates, values); parsing every narrative, note
//! and nested element into a `serde_json::Value` was most of the hub's cost per view
//! (docs/performance.md). So the
//! members nobody reads stay as text and are written out verbatim. `meta`, which the merge reads
//! and writes in every resource, is itself kept as members (see [`Resource::object`]), so the
//! provenance tags are added to it without parsing or rewriting the rest of it. Does not: judge
//! whether a value is a valid resource (see [`crate::provenance`]'s `accept`).
//!
//! Written by hand because no crate offers a lazily parsed JSON object over `serde_json`'s
//! `RawValue` that keeps member order and writes unread members back byte for byte.

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use memchr::memmem::Finder;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A FHIR resource (any JSON object) whose members are parsed on first read.
///
/// The members are a list searched in order, not a hash map: a resource has a few dozen members
/// at most, and comparing short names is cheaper than hashing them. Names FHIR uses often are
/// kept as static text, and a member's text is a range of the page it was read from, so reading
/// a resource from a page allocates its list of members and little else.
#[derive(Clone, Default)]
pub struct Resource {
    /// The text the resource was read from, which its members' text is ranges of; `None` for
    /// one built here.
    page: Option<Arc<String>>,
    members: Vec<(Name, Member)>,
}

/// A member's name.
#[derive(Clone)]
enum Name {
    Common(&'static str),
    Other(Box<str>),
}

impl Name {
    fn new(text: &str) -> Name {
        match common_name(text) {
            Some(name) => Name::Common(name),
            None => Name::Other(text.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Name::Common(name) => name,
            Name::Other(name) => name,
        }
    }
}

/// The member names most resources (and their `meta`) carry, so reading them allocates
/// nothing. A `match`, not a search of a list: the compiler compares the length first and the
/// bytes as integers, where the list's search compared every entry through `memcmp` and cost 2%
/// of a view.
fn common_name(text: &str) -> Option<&'static str> {
    Some(match text {
        "resourceType" => "resourceType",
        "id" => "id",
        "meta" => "meta",
        "text" => "text",
        "extension" => "extension",
        "identifier" => "identifier",
        "status" => "status",
        "clinicalStatus" => "clinicalStatus",
        "verificationStatus" => "verificationStatus",
        "category" => "category",
        "code" => "code",
        "subject" => "subject",
        "patient" => "patient",
        "encounter" => "encounter",
        "context" => "context",
        "effectiveDateTime" => "effectiveDateTime",
        "effectivePeriod" => "effectivePeriod",
        "issued" => "issued",
        "valueQuantity" => "valueQuantity",
        "valueCodeableConcept" => "valueCodeableConcept",
        "valueString" => "valueString",
        "component" => "component",
        "onsetDateTime" => "onsetDateTime",
        "recordedDate" => "recordedDate",
        "abatementDateTime" => "abatementDateTime",
        "performedDateTime" => "performedDateTime",
        "performedPeriod" => "performedPeriod",
        "occurrenceDateTime" => "occurrenceDateTime",
        "vaccineCode" => "vaccineCode",
        "primarySource" => "primarySource",
        "medicationCodeableConcept" => "medicationCodeableConcept",
        "medicationReference" => "medicationReference",
        "authoredOn" => "authoredOn",
        "requester" => "requester",
        "intent" => "intent",
        "dosageInstruction" => "dosageInstruction",
        "period" => "period",
        "class" => "class",
        "type" => "type",
        "result" => "result",
        "versionId" => "versionId",
        "lastUpdated" => "lastUpdated",
        "source" => "source",
        "security" => "security",
        "tag" => "tag",
        "profile" => "profile",
        "participant" => "participant",
        "serviceProvider" => "serviceProvider",
        "reasonCode" => "reasonCode",
        "reasonReference" => "reasonReference",
        "name" => "name",
        "gender" => "gender",
        "birthDate" => "birthDate",
        "address" => "address",
        "telecom" => "telecom",
        "description" => "description",
        "note" => "note",
        "performer" => "performer",
        "location" => "location",
        "valueBoolean" => "valueBoolean",
        "valueInteger" => "valueInteger",
        "effectiveInstant" => "effectiveInstant",
        "onsetPeriod" => "onsetPeriod",
        "severity" => "severity",
        "criticality" => "criticality",
        "activity" => "activity",
        "title" => "title",
        "created" => "created",
        "author" => "author",
        _ => return None,
    })
}

/// One JSON value's text made here, checked as JSON. Cloning it copies no text, so a
/// provenance extension that a whole source's resources carry is one allocation.
///
/// A thin pointer (the text's own pointer and length are behind it), so that a member holding
/// one stays small ([`Member`]).
#[derive(Clone)]
pub struct RawText(Arc<Box<RawValue>>);

impl RawText {
    /// The text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl From<Box<RawValue>> for RawText {
    fn from(raw: Box<RawValue>) -> RawText {
        RawText(Arc::new(raw))
    }
}

/// A member's text as the source sent it: a range of the page the resource was read from
/// ([`Resource::page`]), or text of its own.
///
/// A view reads about 4,000 members out of its sources' pages. Copying each into an
/// allocation of its own, then freeing it, was a tenth of the hub's time a view, and counting
/// references to the page from every member instead still took 2.6% (docs/performance.md,
/// thirteenth session). So members hold positions only, and the resource holds the page.
#[derive(Clone)]
enum Text {
    Range { start: u32, end: u32 },
    Own(RawText),
}

impl Text {
    /// The text, given the page of the resource that holds it.
    fn get<'a>(&'a self, page: &'a str) -> &'a str {
        match self {
            // A range was taken from the page's own text at token boundaries, so it is always
            // in the page; `null` only keeps a bug from becoming a panic.
            Text::Range { start, end } => {
                page.get(*start as usize..*end as usize).unwrap_or("null")
            }
            Text::Own(text) => text.get(),
        }
    }

    /// `raw` as a range of `page` when it lies inside it (it was read from `page`'s text),
    /// else as text of its own.
    fn within(page: &str, raw: &RawValue) -> Text {
        // Positions compared as numbers: `raw` was borrowed from `page` by serde_json, and
        // this only finds where, without reading through any pointer.
        let base = page.as_ptr() as usize;
        let at = raw.get().as_ptr() as usize;
        let start = at.wrapping_sub(base);
        let end = start.wrapping_add(raw.get().len());
        if at >= base
            && page.get(start..end).is_some()
            && let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end))
        {
            Text::Range { start, end }
        } else {
            Text::Own(RawText::from(raw.to_owned()))
        }
    }
}

/// A member. Every variant is kept small (a member and its name are 56 bytes), so the list of a
/// resource of up to 16 members fits the allocator's fast path for small blocks (1 KiB); at 136
/// bytes a member, most resources' lists took its slow path (docs/performance.md, thirteenth
/// session). What only some members need (a parsed value, a nested object) is boxed.
#[derive(Clone)]
enum Member {
    /// As the source sent it; parsed into `parsed` the first time something reads it.
    Raw {
        text: Text,
        parsed: OnceLock<Box<Value>>,
    },
    /// Built or changed here.
    Owned(Box<Value>),
    /// An object kept as members of its own, each parsed on first read like a resource's: a
    /// member named in [`NESTED`].
    Object(Box<Nested>),
}

/// A [`Member::Object`]: its members, and the whole object as one value, built only when
/// something asks for it as one and forgotten when a member changes.
#[derive(Clone)]
struct Nested {
    members: Resource,
    value: OnceLock<Value>,
}

impl Nested {
    fn member(members: Resource) -> Member {
        Member::Object(Box::new(Nested {
            members,
            value: OnceLock::new(),
        }))
    }
}

/// The members kept as objects of their own members ([`Member::Object`]) when they are objects.
/// `meta` is: the merge reads its tags and extensions and writes its provenance extensions and
/// `source` into every resource of a view, and parsing it into a `serde_json::Value` (a map
/// whose keys are hashed) and writing it back out cost about 1 ms of the hub's CPU a view:
/// keeping it as members took a view from 7.7 to 6.7 ms (docs/performance.md, eleventh session).
const NESTED: &[&str] = &["meta"];

impl Member {
    /// A member built here from a value; an object named in [`NESTED`] keeps its members apart.
    fn owned(name: &str, value: Value) -> Member {
        match value {
            Value::Object(map) if NESTED.contains(&name) => Nested::member(Resource::from(map)),
            value => Member::Owned(Box::new(value)),
        }
    }

    /// A member read from the source's text; an object named in [`NESTED`] is read as members.
    fn raw(name: &str, text: RawText) -> Member {
        if NESTED.contains(&name)
            && text.get().starts_with('{')
            && let Ok(members) = Resource::from_json(text.get())
        {
            return Nested::member(members);
        }
        Member::Raw {
            text: Text::Own(text),
            parsed: OnceLock::new(),
        }
    }

    /// The member as a value; `page` is the holding resource's ([`Resource::page`]).
    fn value<'a>(&'a self, page: &str) -> &'a Value {
        match self {
            // The text is JSON serde_json has already checked, so parsing it again cannot fail;
            // `Null` is only a guard that keeps a bug from becoming a panic.
            Member::Raw { text, parsed } => parsed.get_or_init(|| {
                Box::new(serde_json::from_str(text.get(page)).unwrap_or(Value::Null))
            }),
            Member::Owned(value) => value,
            Member::Object(nested) => nested.value.get_or_init(|| nested.members.to_value()),
        }
    }

    /// The member read as `T`, straight from its text when it has not been parsed, so a reader
    /// that needs a few fields of an object builds no map. `None` when it does not fit `T`.
    fn read<'a, T: Deserialize<'a>>(&'a self, page: &'a str) -> Option<T> {
        match self {
            Member::Raw { text, parsed } => match parsed.get() {
                Some(value) => T::deserialize(&**value).ok(),
                None => serde_json::from_str(text.get(page)).ok(),
            },
            Member::Owned(value) => T::deserialize(&**value).ok(),
            Member::Object(_) => T::deserialize(self.value(page)).ok(),
        }
    }

    fn into_value(self, page: &str) -> Value {
        match self {
            Member::Raw { text, parsed } => parsed.into_inner().map_or_else(
                || serde_json::from_str(text.get(page)).unwrap_or(Value::Null),
                |value| *value,
            ),
            Member::Owned(value) => *value,
            Member::Object(nested) => {
                let Nested { members, value } = *nested;
                value.into_inner().unwrap_or_else(|| members.into_value())
            }
        }
    }
}

impl Resource {
    /// Reads a resource from JSON text. `Err` when the text is not JSON or not an object.
    pub fn from_json(text: &str) -> Result<Resource, serde_json::Error> {
        // One copy of the whole text, which its members are ranges of.
        let page = Arc::new(text.to_string());
        let mut de = serde_json::Deserializer::from_str(&page);
        Resource::seed(&page)
            .deserialize(&mut de)
            .and_then(|resource| de.end().map(|()| resource))
            .or_else(|error| {
                // A member kept as members of its own that is not an object fails the one-pass
                // read ([`NestedSeed`]); read as a value, it is kept as it is.
                match serde_json::from_str(text) {
                    Ok(Value::Object(map)) => Ok(Resource::from(map)),
                    _ => Err(error),
                }
            })
    }

    /// A resource from a parsed value; `None` when it is not an object.
    pub fn from_value(value: Value) -> Option<Resource> {
        match value {
            Value::Object(map) => Some(Resource::from(map)),
            _ => None,
        }
    }

    /// The text the members read from it are ranges of ([`Text::Range`]); empty for a resource
    /// built here, which has none.
    fn page(&self) -> &str {
        self.page.as_deref().map_or("", String::as_str)
    }

    fn member(&self, key: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|(name, _)| name.as_str() == key)
            .map(|(_, member)| member)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|(name, _)| name.as_str() == key)
    }

    /// The member `key`, parsed (once) if it was not yet.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.member(key).map(|member| member.value(self.page()))
    }

    /// The member `key` read as `T` (a struct of the few fields wanted, say), without building
    /// a value of the whole member. `None` when it is absent or does not fit `T`.
    pub fn read<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Option<T> {
        self.member(key).and_then(|member| member.read(self.page()))
    }

    /// The member `key` of the object member `object` (`meta`'s `tag`, say), parsing only that
    /// member when the object is kept as members ([`Resource::object`]).
    pub fn get_in(&self, object: &str, key: &str) -> Option<&Value> {
        match self.member(object)? {
            Member::Object(nested) => nested.members.get(key),
            member => member.value(self.page()).get(key),
        }
    }

    /// [`Resource::get_in`], read as `T` like [`Resource::read`].
    pub fn read_in<'a, T: Deserialize<'a>>(&'a self, object: &str, key: &str) -> Option<T> {
        match self.member(object)? {
            Member::Object(nested) => nested.members.read(key),
            member => member
                .value(self.page())
                .get(key)
                .and_then(|v| T::deserialize(v).ok()),
        }
    }

    /// The member `key` when it is a string. A string as the source sent it, with no escapes,
    /// is its text between the quotes, read without parsing it into a value: the merge and the
    /// summary read every resource's `resourceType`, `id` and `status` several times.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        let member = self.member(key)?;
        if let Member::Raw { text, .. } = member
            && let Some(inner) = unescaped_string(text.get(self.page()))
        {
            return Some(inner);
        }
        member.value(self.page()).as_str()
    }

    /// A JSON pointer (`/meta/tag`), parsing only the first member it names.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        let rest = pointer.strip_prefix('/')?;
        let (first, rest) = match rest.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (rest, None),
        };
        let value = self.get(first)?;
        match rest {
            Some(rest) => value.pointer(&format!("/{rest}")),
            None => Some(value),
        }
    }

    /// The member `key`, to change; it is written out from the value from now on.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let at = self.position(key)?;
        let page = self.page.as_deref().map_or("", String::as_str);
        let member = &mut self.members[at].1;
        if !matches!(member, Member::Owned(_)) {
            let owned =
                std::mem::replace(member, Member::Owned(Box::new(Value::Null))).into_value(page);
            *member = Member::Owned(Box::new(owned));
        }
        match member {
            Member::Owned(value) => Some(value),
            Member::Raw { .. } | Member::Object(_) => None,
        }
    }

    /// The member `key` as an object of lazily read members, when it is kept as one (an object
    /// member named in [`NESTED`]: `meta`). Reading a member of it parses that member alone.
    pub fn object(&self, key: &str) -> Option<&Resource> {
        match self.member(key)? {
            Member::Object(nested) => Some(&nested.members),
            Member::Raw { .. } | Member::Owned(_) => None,
        }
    }

    /// [`Resource::object`], to change: the members not changed are still written out as the
    /// source's text.
    pub fn object_mut(&mut self, key: &str) -> Option<&mut Resource> {
        let at = self.position(key)?;
        let page = self.page.as_deref().map_or("", String::as_str);
        let member = &mut self.members[at].1;
        // An object still as the source sent it is read as members, each left as text; one
        // changed as a whole value keeps its parsed members. Either is kept as members from now
        // on.
        let members = match member {
            Member::Raw { text, .. } if text.get(page).starts_with('{') => {
                Some(Resource::from_json(text.get(page)).ok()?)
            }
            Member::Owned(value) => match &mut **value {
                Value::Object(map) => Some(Resource::from(std::mem::take(map))),
                _ => None,
            },
            Member::Raw { .. } | Member::Object(_) => None,
        };
        if let Some(members) = members {
            *member = Nested::member(members);
        }
        match member {
            Member::Object(nested) => {
                // The whole value, if it was built, no longer matches.
                nested.value.take();
                Some(&mut nested.members)
            }
            Member::Raw { .. } | Member::Owned(_) => None,
        }
    }

    /// Sets a member to JSON text, in place if it exists, else last. The text is written out as
    /// it is and parsed only if something reads it: for a value that many resources share (a
    /// source's provenance extension), serialised once.
    pub fn insert_raw(&mut self, key: &str, text: RawText) {
        let member = Member::raw(key, text);
        match self.position(key) {
            Some(at) => self.members[at].1 = member,
            None => self.members.push((Name::new(key), member)),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.member(key).is_some()
    }

    /// Member names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(name, _)| name.as_str())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets a member, in place if it exists, else last.
    pub fn insert(&mut self, key: &str, value: Value) {
        let member = Member::owned(key, value);
        match self.position(key) {
            Some(at) => self.members[at].1 = member,
            None => self.members.push((Name::new(key), member)),
        }
    }

    /// Sets a member at position `index` (moving it there if it exists).
    pub fn shift_insert(&mut self, index: usize, key: &str, value: Value) {
        if let Some(at) = self.position(key) {
            self.members.remove(at);
        }
        let index = index.min(self.members.len());
        let member = Member::owned(key, value);
        self.members.insert(index, (Name::new(key), member));
    }

    /// Appends the resource to `out` as JSON text: what the [`Serialize`] impl writes, without
    /// going through a serializer per member. Members never read are copied as the source sent
    /// them, and the common member names (which need no escaping) as they are. A view writes a
    /// few thousand of each, and this took a fifth off writing the summary
    /// (docs/performance.md, twelfth session).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (at, (name, member)) in self.members.iter().enumerate() {
            if at > 0 {
                out.push(b',');
            }
            match name {
                Name::Common(name) => {
                    out.push(b'"');
                    out.extend_from_slice(name.as_bytes());
                    out.push(b'"');
                }
                Name::Other(name) => write_json_str(out, name),
            }
            out.push(b':');
            match member {
                Member::Raw { text, .. } => out.extend_from_slice(text.get(self.page()).as_bytes()),
                Member::Owned(value) => write_json_value(out, value),
                Member::Object(nested) => nested.members.write_json(out),
            }
        }
        out.push(b'}');
    }

    /// The resource as checked JSON text ([`Resource::write_json`], then checked once as a
    /// whole), for a Bundle entry written through serde. `None` only were the text not JSON,
    /// which it always is.
    pub fn to_raw(&self) -> Option<Box<RawValue>> {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        RawValue::from_string(String::from_utf8(out).ok()?).ok()
    }

    /// The whole resource as a value (parses every member not yet read).
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.members
                .iter()
                .map(|(k, m)| (k.as_str().to_string(), m.value(self.page()).clone()))
                .collect(),
        )
    }

    /// The whole resource as a value, consuming it.
    pub fn into_value(self) -> Value {
        let page = self.page.as_deref().map_or("", String::as_str);
        Value::Object(
            self.members
                .into_iter()
                .map(|(k, m)| (k.as_str().to_string(), m.into_value(page)))
                .collect(),
        )
    }

    /// Calls `f` with every string `reference` anywhere in the resource (contained resources
    /// included), until `f` returns `true`; returns whether it did. Members never read are walked
    /// as text, without building values.
    pub fn any_reference(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        self.members
            .iter()
            .any(|(_, member)| member_any_reference(member, self.page(), &mut f))
    }

    /// [`Resource::any_reference`], looking first in the members named in `first` (where the
    /// reference sought usually is, so a search that stops at the first hit rarely walks the
    /// rest), then in all the others.
    pub fn any_reference_first_in(&self, first: &[&str], mut f: impl FnMut(&str) -> bool) -> bool {
        first.iter().any(|key| {
            self.member(key)
                .is_some_and(|member| member_any_reference(member, self.page(), &mut f))
        }) || self
            .members
            .iter()
            .filter(|(name, _)| !first.contains(&name.as_str()))
            .any(|(_, member)| member_any_reference(member, self.page(), &mut f))
    }
}

/// The content of a JSON string's text that holds no escape: the text between its quotes. In
/// valid JSON text (a [`Member::Raw`] always is) such a string's content is its value.
fn unescaped_string(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// [`Resource::any_reference`] over one member.
fn member_any_reference(member: &Member, page: &str, f: &mut impl FnMut(&str) -> bool) -> bool {
    match member {
        Member::Raw { text, .. } => {
            let text = text.get(page);
            if let Some(found) = scan_references(text, f) {
                return found;
            }
            let mut de = serde_json::Deserializer::from_str(text);
            let mut walk = ReferenceWalk {
                f,
                found: false,
                is_reference: false,
            };
            // The text was checked when it was read, so the walk cannot fail.
            let _ = (&mut walk).deserialize(&mut de);
            walk.found
        }
        Member::Owned(value) => value_any_reference(value, f),
        Member::Object(nested) => nested
            .members
            .members
            .iter()
            .any(|(_, member)| member_any_reference(member, nested.members.page(), f)),
    }
}

impl From<Map<String, Value>> for Resource {
    fn from(map: Map<String, Value>) -> Resource {
        Resource {
            page: None,
            members: map
                .into_iter()
                .map(|(k, v)| {
                    let member = Member::owned(&k, v);
                    (Name::new(&k), member)
                })
                .collect(),
        }
    }
}

/// Resources compare by content, however much of each has been parsed.
impl PartialEq for Resource {
    fn eq(&self, other: &Resource) -> bool {
        self.len() == other.len()
            && self
                .members
                .iter()
                .all(|(k, m)| other.get(k.as_str()) == Some(m.value(self.page())))
    }
}

/// The resource's JSON. There is deliberately no `Display`: a resource is patient data and has
/// no business in a log line or an error message.
impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

/// Appends anything serde can write as JSON text. Writing into a `Vec` fails only for a map with
/// keys that are not strings; were it to, `null` keeps the text valid JSON.
pub(crate) fn write_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

/// Appends a value as JSON text: the same bytes as `serde_json` writes, with the strings that
/// need no escaping copied whole.
///
/// Written by hand because `serde_json`'s writer looks each byte of a string up in its escape
/// table, and a view writes a few hundred kilobytes of strings it built itself (the summary's
/// narratives, fullUrls, provenance): that was 3.6% of a federated view's instructions
/// (docs/performance.md, 2026-12-05, fourteenth session). Numbers, booleans and `null` are
/// still written by `serde_json`.
pub(crate) fn write_json_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => write_json_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                write_json_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (at, (key, item)) in map.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                write_json_str(out, key);
                out.push(b':');
                write_json_value(out, item);
            }
            out.push(b'}');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => write_value(out, value),
    }
}

/// Appends a string as a JSON string ([`write_json_value`]), escaped as `serde_json` escapes
/// it: `\"`, `\\`, the short escapes of the common control characters, `\u00xx` for the rest;
/// every other byte (`/` and non-ASCII included) as it is. The runs between escapes are copied
/// whole: a summary's narratives quote their XHTML namespace, so they always hold something to
/// escape.
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(found) = next_json_escape(&bytes[run..]) {
        let at = run + found;
        out.extend_from_slice(&bytes[run..at]);
        let byte = bytes[at];
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Where the first byte JSON escapes is: a quote, a backslash or a control character.
fn next_json_escape(bytes: &[u8]) -> Option<usize> {
    let escaped = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\';
    // Sixteen bytes at a time with no early exit inside, which the compiler makes into vector
    // compares; the chunk that holds one is then looked through.
    let mut chunks = bytes.chunks_exact(16);
    let mut start = 0;
    for chunk in &mut chunks {
        if chunk
            .iter()
            .fold(false, |found, &byte| found | escaped(byte))
        {
            return chunk
                .iter()
                .position(|&byte| escaped(byte))
                .map(|at| start + at);
        }
        start += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| escaped(byte))
        .map(|at| start + at)
}

/// Members never read are written out as the source's text, byte for byte.
impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (key, member) in &self.members {
            match member {
                Member::Raw { text, .. } => match text {
                    Text::Own(text) => map.serialize_entry(key.as_str(), &*text.0)?,
                    // Only `serde_json`'s own `RawValue` writes raw text through a serializer,
                    // so a range of the page is borrowed as one (checked again, without
                    // copying); `write_json` writes it without that check.
                    Text::Range { .. } => map.serialize_entry(
                        key.as_str(),
                        serde_json::from_str::<&RawValue>(text.get(self.page()))
                            .map_err(serde::ser::Error::custom)?,
                    )?,
                },
                Member::Owned(value) => map.serialize_entry(key.as_str(), value)?,
                Member::Object(nested) => map.serialize_entry(key.as_str(), &nested.members)?,
            }
        }
        map.end()
    }
}

/// Reads a JSON object's members as text, each copied into text of its own; a repeated member
/// keeps its last value, as `serde_json::Value` does. Only `serde_json`'s own deserializer can
/// hand out raw text. Reading a page's text, [`Resource::seed`] copies nothing.
impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Resource, D::Error> {
        deserializer.deserialize_map(ObjectVisitor { page: None })
    }
}

/// Reads one resource out of `page`'s text with its members kept as ranges of it
/// ([`Resource::seed`]).
pub struct ResourceSeed<'p> {
    page: &'p Arc<String>,
}

impl Resource {
    /// Reads a resource whose members stay ranges of `page`, copying no text: for a
    /// deserializer reading `page` itself (`serde_json::Deserializer::from_str(page)`). Read
    /// from any other text, the members are copied, as [`Deserialize`] does.
    pub fn seed(page: &Arc<String>) -> ResourceSeed<'_> {
        ResourceSeed { page }
    }
}

impl<'de> DeserializeSeed<'de> for ResourceSeed<'_> {
    type Value = Resource;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Resource, D::Error> {
        deserializer.deserialize_map(ObjectVisitor {
            page: Some(self.page),
        })
    }
}

/// Reads an object's members; with a page, as ranges of it.
struct ObjectVisitor<'p> {
    page: Option<&'p Arc<String>>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Resource;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Resource, A::Error> {
        let mut members: Vec<(Name, Member)> = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(name) = map.next_key_seed(NameSeed)? {
            // A member kept as members of its own is read as such in this same pass, not kept
            // as text and read again.
            let member = if NESTED.contains(&name.as_str()) {
                map.next_value_seed(NestedSeed { page: self.page })?
            } else {
                let text = match self.page {
                    Some(page) => Text::within(page, map.next_value::<&RawValue>()?),
                    None => Text::Own(RawText::from(map.next_value::<Box<RawValue>>()?)),
                };
                Member::Raw {
                    text,
                    parsed: OnceLock::new(),
                }
            };
            match members
                .iter_mut()
                .find(|(known, _)| known.as_str() == name.as_str())
            {
                Some((_, slot)) => *slot = member,
                None => members.push((name, member)),
            }
        }
        Ok(Resource {
            page: self.page.cloned(),
            members,
        })
    }
}

/// Reads a member named in [`NESTED`] as members of its own ([`Member::Object`]). Anything but
/// an object there (which FHIR does not allow) fails the read, and the text is then read as a
/// value ([`Resource::from_json`]; a source's page is read again with care). Taking any JSON
/// value here instead would mean mimicking `serde_json`'s private encoding of numbers.
struct NestedSeed<'p> {
    page: Option<&'p Arc<String>>,
}

impl<'de> DeserializeSeed<'de> for NestedSeed<'_> {
    type Value = Member;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NestedSeed<'_> {
    type Value = Member;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Member, A::Error> {
        let members =
            MapAccessDeserializer::new(map).deserialize_map(ObjectVisitor { page: self.page })?;
        Ok(Nested::member(members))
    }
}

/// Reads a member name straight into a [`Name`], so a common one is never copied.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Name, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed {
    type Value = Name;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, text: &str) -> Result<Name, E> {
        Ok(Name::new(text))
    }
}

/// [`Resource::any_reference`] over a parsed value. Uses its own stack, so no nesting depth can
/// exhaust the thread's.
fn value_any_reference(value: &Value, f: &mut impl FnMut(&str) -> bool) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("reference", Value::String(text)) => {
                            if f(text) {
                                return true;
                            }
                        }
                        _ => stack.push(child),
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// Finds the string value of every `reference` member in JSON text by searching the text for
/// `"reference"`, which is several times cheaper than walking it as JSON: the search skips the
/// narrative, codes and values a walk reads token by token. Calls `f` on each in order until it
/// returns `true`; returns whether it did, or `None` when the text holds a `\u` escape, which
/// could spell a member name the search would not see (the caller then walks the text).
///
/// In valid JSON text (a [`Member::Raw`] always is), `"reference"` whose first quote is not
/// escaped, followed by `:`, can only be that member's name: inside a string every quote is
/// escaped, and a string value is never followed by `:`. Written by hand because it relies on
/// that guarantee; `memchr` does the searching.
fn scan_references(text: &str, f: &mut impl FnMut(&str) -> bool) -> Option<bool> {
    // Built once: building a searcher costs more than most members take to search.
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));
    static NAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"reference\""));
    let bytes = text.as_bytes();
    // Only an object or an array holds members: a string, number or literal (most of a
    // resource's members: `id`, `status`, dates) has no `reference`, and is not searched.
    if !matches!(bytes.first(), Some(b'{' | b'[')) {
        return Some(false);
    }
    // A backslash is rare in FHIR text, and one byte is found faster than two.
    if let Some(at) = memchr::memchr(b'\\', bytes)
        && ESCAPE.find(&bytes[at..]).is_some()
    {
        return None;
    }
    let skip_space = |mut at: usize| {
        while bytes
            .get(at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            at += 1;
        }
        at
    };
    let mut from = 0;
    while let Some(found) = NAME.find(&bytes[from..]) {
        let start = from + found;
        from = start + NAME.needle().len();
        let escapes = bytes[..start]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if escapes % 2 == 1 {
            continue;
        }
        let colon = skip_space(from);
        if bytes.get(colon) != Some(&b':') {
            continue;
        }
        let open = skip_space(colon + 1);
        if bytes.get(open) != Some(&b'"') {
            // Not a string (an object or a number, say): a walk reports none either.
            continue;
        }
        // The value's closing quote: the first quote not escaped.
        let mut close = open + 1;
        let mut escaped = false;
        // The `None`s below (no closing quote, an escape serde_json refuses) cannot happen in
        // valid JSON text; were they to, the caller's walk reports what is there.
        loop {
            let next = close + memchr::memchr2(b'"', b'\\', bytes.get(close..)?)?;
            if bytes[next] == b'"' {
                close = next;
                break;
            }
            escaped = true;
            close = next + 2;
        }
        let hit = if escaped {
            f(&serde_json::from_str::<String>(&text[open..=close]).ok()?)
        } else {
            f(&text[open + 1..close])
        };
        if hit {
            return Some(true);
        }
        from = close + 1;
    }
    Some(false)
}

/// Walks JSON text through serde's data model, calling `f` on the string value of every
/// `reference` member. Strings are seen borrowed where the text has no escapes, so the walk
/// allocates next to nothing. serde_json's recursion limit bounds the depth.
struct ReferenceWalk<'f, F> {
    f: &'f mut F,
    found: bool,
    /// Whether the value being walked is a `reference` member's.
    is_reference: bool,
}

impl<'de, F: FnMut(&str) -> bool> DeserializeSeed<'de> for &mut ReferenceWalk<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(&str) -> bool> Visitor<'de> for &mut ReferenceWalk<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<(), E> {
        if self.is_reference && !self.found {
            self.found = (self.f)(text);
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.is_reference = false;
        while seq.next_element_seed(&mut *self)?.is_some() {
            self.is_reference = false;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(is_reference) = map.next_key_seed(KeyIsReference)? {
            if self.found {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.is_reference = is_reference;
            map.next_value_seed(&mut *self)?;
            self.is_reference = false;
        }
        Ok(())
    }
}

/// Reads a member name and says whether it is `reference`, without keeping it.
struct KeyIsReference;

impl<'de> DeserializeSeed<'de> for KeyIsReference {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIsReference {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, text: &str) -> Result<bool, E> {
        Ok(text == "reference")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &str = r#"{"resourceType":"Observation","id":"o1","text":{"status":"generated","div":"<div>Hb 5.0</div>"},"valueQuantity":{"value":5.0,"unit":"g/dL"},"subject":{"reference":"Patient/p1"},"contained":[{"resourceType":"Specimen","id":"s","subject":{"reference":"Patient/p2","display":"x"}}],"note":[{"text":"reference"}]}"#;

    /// Every `reference` the walk finds, in order.
    fn walked(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut de = serde_json::Deserializer::from_str(text);
        let mut f = |r: &str| {
            found.push(r.to_string());
            false
        };
        let mut walk = ReferenceWalk {
            f: &mut f,
            found: false,
            is_reference: false,
        };
        (&mut walk).deserialize(&mut de).unwrap();
        found
    }

    /// Every `reference` the search finds, in order, or `None` when it leaves the text to a walk.
    fn scanned(text: &str) -> Option<Vec<String>> {
        let mut found = Vec::new();
        let stopped = scan_references(text, &mut |r: &str| {
            found.push(r.to_string());
            false
        })?;
        assert!(!stopped);
        Some(found)
    }

    #[test]
    fn the_search_finds_what_the_walk_finds() {
        let cases = [
            TEXT,
            r#"{"subject":{"reference":"Patient/1"},"note":[{"text":"see \"reference\": \"Patient/2\""}]}"#,
            r#"{"a":"ends in a backslash \\","reference" : "Patient/3"}"#,
            r#"{"a":{"reference":{"reference":"Patient/4"}},"b":["reference"],"c":{"reference":5}}"#,
            r#"{"reference":"Patient\/5","x":{"reference":"Patient/\"6"}}"#,
            "{\"reference\"\n\t:\r \"Patient/7\"}",
            r#"{"text":"no references here"}"#,
            r#"[{"reference":"Patient/8"},{"reference":""}]"#,
        ];
        for text in cases {
            assert_eq!(scanned(text), Some(walked(text)), "{text}");
        }
        // A `\u` escape can spell `reference` itself, so such text is walked.
        let disguised = r#"{"refer\u0065nce":"Patient/9"}"#;
        assert_eq!(scanned(disguised), None);
        assert_eq!(walked(disguised), ["Patient/9"]);
    }

    #[test]
    fn the_search_stops_where_the_caller_says() {
        let text = r#"{"a":{"reference":"Patient/1"},"b":{"reference":"Patient/2"}}"#;
        let mut seen = Vec::new();
        let stopped = scan_references(text, &mut |r: &str| {
            seen.push(r.to_string());
            true
        });
        assert_eq!(stopped, Some(true));
        assert_eq!(seen, ["Patient/1"]);
    }

    proptest::proptest! {
        /// On any JSON (strings drawn to hold quotes, backslashes, `reference` and control
        /// characters, which serde_json writes as `\u` escapes), the search agrees with the walk.
        #[test]
        fn the_search_agrees_with_the_walk_on_any_json(value in json_value()) {
            let text = serde_json::to_string(&value).unwrap();
            if let Some(found) = scanned(&text) {
                proptest::prop_assert_eq!(found, walked(&text));
            }
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            if let Some(found) = scanned(&pretty) {
                proptest::prop_assert_eq!(found, walked(&pretty));
            }
        }
    }

    proptest::proptest! {
        /// The hand-written writer gives the bytes serde_json gives, for any value: strings of
        /// any characters and lengths (across the sixteen-byte steps of the escape check, with
        /// the character to escape anywhere in them), numbers, booleans, nesting.
        #[test]
        fn values_are_written_as_serde_json_writes_them(value in written_value()) {
            let mut out = Vec::new();
            write_json_value(&mut out, &value);
            proptest::prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
    }

    fn written_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        // Long runs of plain text with a character JSON escapes (or not) somewhere among them.
        let text = (
            "[a-z/é ]{0,40}",
            prop::sample::select(
                &[
                    "", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{1}", "\u{1f}",
                    "\u{7f}", "/", "€",
                ][..],
            ),
            "[a-z ]{0,40}",
        )
            .prop_map(|(head, middle, tail)| [head.as_str(), middle, tail.as_str()].concat());
        let leaf = prop_oneof![
            text.clone().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((text.clone(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = prop::sample::select(
            &[
                "reference",
                "\"reference\":",
                "Patient/1",
                "\\",
                "\\\"",
                "a\"reference\" : \"b",
                "",
                "\u{1}",
                "é",
            ][..],
        )
        .prop_map(str::to_string);
        let key = prop::sample::select(&["reference", "subject", "a\"reference", "x\\"][..])
            .prop_map(str::to_string);
        let leaf = prop_oneof![
            text.clone().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((key.clone(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn unread_members_are_written_back_byte_for_byte() {
        let resource = Resource::from_json(TEXT).unwrap();
        assert_eq!(resource.get_str("id"), Some("o1"));
        // 5.0 stays 5.0, and member order is kept.
        assert_eq!(serde_json::to_string(&resource).unwrap(), TEXT);
        assert_eq!(
            resource.to_value(),
            serde_json::from_str::<Value>(TEXT).unwrap()
        );
    }

    #[test]
    fn changed_members_are_written_from_their_value() {
        let mut resource = Resource::from_json(TEXT).unwrap();
        resource.shift_insert(2, "meta", json!({"source": "https://gp.example/fhir"}));
        resource.get_mut("valueQuantity").unwrap()["unit"] = json!("g/L");
        let out: Value = serde_json::to_value(&resource).unwrap();
        assert_eq!(
            out.as_object().unwrap().keys().take(3).collect::<Vec<_>>(),
            ["resourceType", "id", "meta"]
        );
        assert_eq!(out["valueQuantity"]["unit"], "g/L");
        assert_eq!(out["valueQuantity"]["value"].to_string(), "5.0");
        assert_eq!(
            resource.pointer("/meta/source"),
            Some(&json!("https://gp.example/fhir"))
        );
    }

    #[test]
    fn references_are_found_in_text_and_in_values_alike() {
        let raw = Resource::from_json(TEXT).unwrap();
        let parsed = Resource::from_value(serde_json::from_str(TEXT).unwrap()).unwrap();
        for resource in [&raw, &parsed] {
            let mut seen = Vec::new();
            assert!(!resource.any_reference(|r| {
                seen.push(r.to_string());
                false
            }));
            seen.sort();
            // The note's text "reference" is a value, not a member name, so it is not one.
            assert_eq!(seen, ["Patient/p1", "Patient/p2"]);
            assert!(resource.any_reference(|r| r == "Patient/p2"));
            let mut order = Vec::new();
            assert!(
                !resource.any_reference_first_in(&["contained", "nothing"], |r| {
                    order.push(r.to_string());
                    false
                })
            );
            assert_eq!(order, ["Patient/p2", "Patient/p1"]);
        }
        assert_eq!(raw, parsed);
    }

    #[test]
    fn typed_reads_agree_for_text_parsed_text_and_values() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Quantity<'a> {
            value: serde_json::Number,
            #[serde(borrow)]
            unit: std::borrow::Cow<'a, str>,
        }
        let raw = Resource::from_json(TEXT).unwrap();
        let parsed = Resource::from_json(TEXT).unwrap();
        assert!(parsed.get("valueQuantity").is_some());
        let owned = Resource::from_value(serde_json::from_str(TEXT).unwrap()).unwrap();
        for resource in [&raw, &parsed, &owned] {
            let quantity: Quantity = resource.read("valueQuantity").unwrap();
            // The number keeps its spelling: 5.0, not 5.
            assert_eq!(quantity.value.to_string(), "5.0");
            assert_eq!(quantity.unit, "g/dL");
            // A member that does not fit the type, or is absent, reads as nothing.
            assert_eq!(resource.read::<Quantity>("subject"), None);
            assert_eq!(resource.read::<Quantity>("absent"), None);
        }
    }

    #[test]
    fn meta_is_kept_as_members_and_changed_in_place() {
        let text = r#"{"resourceType":"Condition","id":"c1","meta":{"versionId":"2","lastUpdated":"2026-01-01T00:00:00.0Z","tag":[{"system":"s","code":"t"}]},"code":{"text":"x"}}"#;
        let mut resource = Resource::from_json(text).unwrap();
        assert!(resource.object("meta").is_some());
        assert_eq!(resource.get_in("meta", "versionId"), Some(&json!("2")));
        assert_eq!(resource.read_in::<&str>("meta", "versionId"), Some("2"));
        assert_eq!(resource.get_in("meta", "absent"), None);
        // The whole `meta`, built once read as one value, follows every change made after.
        assert_eq!(resource.get("meta").unwrap()["versionId"], "2");
        let meta = resource.object_mut("meta").unwrap();
        meta.insert_raw(
            "source",
            RawText::from(RawValue::from_string(r#""https://gp""#.into()).unwrap()),
        );
        meta.insert("versionId", json!("3"));
        assert_eq!(resource.get("meta").unwrap()["source"], "https://gp");
        assert_eq!(resource.get_in("meta", "versionId"), Some(&json!("3")));
        // Members not changed are written back as they came (the `.0` stays), new ones last.
        assert_eq!(
            serde_json::to_string(&resource).unwrap(),
            text.replace(r#""versionId":"2""#, r#""versionId":"3""#)
                .replace(r#"}]},"code""#, r#"}],"source":"https://gp"},"code""#)
        );
    }

    #[test]
    fn meta_is_members_however_the_resource_was_made() {
        let value = json!({"resourceType": "Patient", "meta": {"tag": []}});
        let mut built = Resource::from_value(value.clone()).unwrap();
        assert!(built.object("meta").is_some());
        built.insert("meta", json!({"versionId": "1"}));
        assert!(built.object("meta").is_some());
        // Changed as a whole value, it is a value until it is asked for as members again.
        built.get_mut("meta").unwrap()["source"] = json!("s");
        assert!(built.object("meta").is_none());
        assert_eq!(built.get_in("meta", "source"), Some(&json!("s")));
        built
            .object_mut("meta")
            .unwrap()
            .insert("versionId", json!("2"));
        assert!(built.object("meta").is_some());
        assert_eq!(
            built.to_value(),
            json!({"resourceType": "Patient", "meta": {"versionId": "2", "source": "s"}})
        );
        // A `meta` that is not an object stays as it came; it is not an object to change.
        let mut odd = Resource::from_json(r#"{"meta":[1]}"#).unwrap();
        assert!(odd.object("meta").is_none());
        assert!(odd.object_mut("meta").is_none());
        assert_eq!(odd.get("meta"), Some(&json!([1])));
        // Whatever JSON it is (`meta` is read in the resource's own pass, not as text).
        for text in [
            r#"[1,{"a":"b"},[]]"#,
            r#""x\"y""#,
            "1.5",
            "-3",
            "18446744073709551615",
            "true",
            "null",
        ] {
            let odd = Resource::from_json(&format!(r#"{{"meta":{text},"id":"a"}}"#)).unwrap();
            let expected: Value = serde_json::from_str(text).unwrap();
            assert!(odd.object("meta").is_none(), "{text}");
            assert_eq!(odd.get("meta"), Some(&expected), "{text}");
            assert_eq!(
                odd.to_value(),
                json!({"meta": expected, "id": "a"}),
                "{text}"
            );
        }
        // An object is read as members in that pass, and written back as it came.
        let text = r#"{"meta":{"versionId":"1","tag":[{"code":"x" }]},"id":"a"}"#;
        let read = Resource::from_json(text).unwrap();
        assert!(read.object("meta").is_some());
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
        // Other objects are not kept as members unless asked for so.
        let mut raw = Resource::from_json(TEXT).unwrap();
        assert!(raw.object("valueQuantity").is_none());
        assert_eq!(raw.get_in("valueQuantity", "unit"), Some(&json!("g/dL")));
        // Asked for so, an object still as it came is changed member by member, and the rest of
        // it is written back as it was.
        raw.object_mut("valueQuantity")
            .unwrap()
            .insert("unit", json!("g/L"));
        assert!(raw.object("valueQuantity").is_some());
        assert!(
            serde_json::to_string(&raw)
                .unwrap()
                .contains(r#""valueQuantity":{"value":5.0,"unit":"g/L"}"#)
        );
    }

    /// The hand-written text is the serializer's, for member names that need escaping, text
    /// never read, values built here and `meta` kept as members.
    #[test]
    fn written_text_is_what_the_serializer_writes() {
        let mut resource = Resource::from_json(
            r#"{"resourceType":"Observation","a\"b\\c":{"x":[1,2.50,"\u00e9"]},"meta":{"tag":[],"q\n":1},"status":"final"}"#,
        )
        .unwrap();
        let check = |resource: &Resource| {
            let mut out = Vec::new();
            resource.write_json(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(resource).unwrap()
            );
        };
        check(&resource);
        resource.insert("note\u{1}", json!([{"text": "line\n\"quoted\" é"}]));
        resource
            .object_mut("meta")
            .unwrap()
            .insert("source", json!("https://gp/fhir"));
        check(&resource);
        check(&Resource::default());
    }

    /// Members read from a page are ranges of it, found wherever the resource sits in the page
    /// (here the second of an array, after text with escapes), and read, written and changed as
    /// the text they are. Read from other text than the page named, they are copies.
    #[test]
    fn members_read_from_a_page_are_its_text_wherever_it_sits() {
        let resource_text = r#"{"resourceType":"Observation","id":"o\"1","meta":{"source":"s","tag":[{"code":"x"}]},"valueQuantity":{"value":5.0,"unit":"g/dL"},"subject":{"reference":"Patient/p1"}}"#;
        let page = Arc::new(format!(r#"[{{"skip":"\u00e9 \\"}}, {resource_text}]"#));
        struct Second<'p>(&'p Arc<String>);
        impl<'de> Visitor<'de> for Second<'_> {
            type Value = Resource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("two resources")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Resource, A::Error> {
                seq.next_element::<IgnoredAny>()?;
                Ok(seq.next_element_seed(Resource::seed(self.0))?.unwrap())
            }
        }
        let mut de = serde_json::Deserializer::from_str(&page);
        let read = de.deserialize_seq(Second(&page)).unwrap();
        assert!(read.members.iter().any(|(_, m)| matches!(
            m,
            Member::Raw {
                text: Text::Range { .. },
                ..
            }
        )));
        let written = |resource: &Resource| {
            let mut out = Vec::new();
            resource.write_json(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(&read), resource_text);
        assert_eq!(serde_json::to_string(&read).unwrap(), resource_text);
        assert_eq!(read.get_str("id"), Some("o\"1"));
        assert_eq!(read.get_in("meta", "source"), Some(&json!("s")));
        let mut refs = Vec::new();
        read.any_reference(|r| {
            refs.push(r.to_string());
            false
        });
        assert_eq!(refs, ["Patient/p1"]);
        let mut changed = read.clone();
        changed.get_mut("valueQuantity").unwrap()["value"] = json!(6);
        changed
            .object_mut("meta")
            .unwrap()
            .insert("source", json!("t"));
        assert_eq!(
            written(&changed),
            resource_text
                .replace(r#""source":"s""#, r#""source":"t""#)
                .replace("5.0", "6")
        );
        assert_eq!(written(&read), resource_text);

        let other = Arc::new(String::from("{}"));
        let mut de = serde_json::Deserializer::from_str(resource_text);
        let copied = Resource::seed(&other).deserialize(&mut de).unwrap();
        assert!(copied.members.iter().all(|(_, m)| !matches!(
            m,
            Member::Raw {
                text: Text::Range { .. },
                ..
            }
        )));
        assert_eq!(written(&copied), resource_text);
        assert_eq!(copied, read);
    }

    /// A string is read the same whether it holds escapes (parsed) or not (its text), and other
    /// values are not strings.
    #[test]
    fn strings_read_as_text_or_parsed_alike() {
        let resource = Resource::from_json(
            r#"{"a":"plain é","b":"q\"uote\u00e9","c":5,"d":null,"e":["x"],"f":"","g":"\\"}"#,
        )
        .unwrap();
        assert_eq!(resource.get_str("a"), Some("plain é"));
        assert_eq!(resource.get_str("b"), Some("q\"uoteé"));
        assert_eq!(resource.get_str("c"), None);
        assert_eq!(resource.get_str("d"), None);
        assert_eq!(resource.get_str("e"), None);
        assert_eq!(resource.get_str("f"), Some(""));
        assert_eq!(resource.get_str("g"), Some("\\"));
        assert_eq!(resource.get_str("missing"), None);
        for key in ["a", "b", "f", "g"] {
            assert_eq!(
                resource.get_str(key),
                resource.get(key).and_then(Value::as_str)
            );
        }
    }

    /// A resource's list of up to 16 members stays within the allocator's fast path for small
    /// blocks ([`Member`]).
    #[test]
    fn sixteen_members_fit_a_small_block() {
        assert!(16 * size_of::<(Name, Member)>() <= 1024);
    }

    #[test]
    fn not_an_object_is_an_error_and_repeats_keep_the_last() {
        assert!(Resource::from_json("[1]").is_err());
        assert!(Resource::from_json("{\"a\":").is_err());
        assert!(Resource::from_value(json!("x")).is_none());
        let resource = Resource::from_json(r#"{"id":"a","id":"b"}"#).unwrap();
        assert_eq!(resource.get_str("id"), Some("b"));
        assert_eq!(resource.len(), 1);
        // A common name spelt with an escape, and an uncommon name, repeat all the same.
        let resource =
            Resource::from_json(r#"{"id":"a","x-y":1,"i\u0064":"b","x-y":2,"status":"c"}"#)
                .unwrap();
        assert_eq!(resource.keys().collect::<Vec<_>>(), ["id", "x-y", "status"]);
        assert_eq!(resource.get_str("id"), Some("b"));
        assert_eq!(resource.get("x-y"), Some(&json!(2)));
    }
}
