//! Structural validation of FHIR R4 resources against the base StructureDefinitions.
//!
//! Owns: [`validate_resource`], which walks a resource's JSON alongside the element table of
//! [`crate::structure`] and reports, as issues with FHIRPath expressions (`Patient.name[0].given[1]`):
//! an unknown or missing `resourceType`; unknown elements; the JSON shape each cardinality demands
//! (arrays for `*`, single values for `1`, required elements present); empty objects, arrays and
//! strings and stray `null`s; primitive values (via [`crate::primitive`]) including the resource id;
//! the `_name` siblings that carry a primitive's id and extensions; choice elements (a known type
//! suffix, at most one per element); resources nested in `contained`, `Bundle.entry.resource` and
//! every other Resource-typed element, each against its own type; the syntax of
//! `Reference.reference` (via [`crate::reference`]); `Extension.url`, and `Narrative.div` being a
//! string; and that a `code` with a required binding is one of its ValueSet's codes
//! (`Patient.gender`), where the ValueSet is enumerable ([`crate::structure::ValueSet`]).
//!
//! Does not: check invariants (FHIRPath constraints such as `ext-1` or `dom-2`), profiles, slicing,
//! other terminology bindings (extensible or weaker ones, CodeableConcept and Coding, ValueSets
//! that need a terminology server), whether references resolve, or the content of the XHTML
//! narrative. Those need a FHIRPath engine, terminology or a store; structure is what every write
//! can afford.
//!
//! The walk is bounded: it stops after [`MAX_ISSUES`] issues and does not descend deeper than
//! [`MAX_DEPTH`] objects, so neither a huge nor a deeply nested body can make it slow or overflow
//! the stack. It builds the current path in one reused buffer and allocates only for issues.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::{Issue, IssueType};
use crate::primitive::{Primitive, json_kind};
use crate::structure::{self, Content, ElementDef, Resolved, ValueSet};

/// The most issues one validation reports; one more says that the list was cut short.
pub const MAX_ISSUES: usize = 100;

/// How many JSON objects deep the walk goes before it reports the nesting and stops descending.
/// Real resources stay far below this (the deepest official example nests 12 objects).
pub const MAX_DEPTH: usize = 64;

/// Validates a resource's structure. Returns the issues found, empty when the resource is valid;
/// every issue is an error. Never panics.
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    let mut walk = Walk {
        issues: Vec::new(),
        path: String::with_capacity(128),
        stopped: false,
    };
    walk.resource(resource, 0);
    if walk.stopped {
        walk.issues.push(Issue::error(
            IssueType::TooLong,
            format!("Validation stopped after {MAX_ISSUES} issues; fix these and submit again to see the rest."),
        ));
    }
    walk.issues
}

/// How many distinct choice elements one object can have tracked for the one-value rule. The base
/// definitions have at most five choices in one element (ElementDefinition).
const CHOICE_SLOTS: usize = 8;

struct Walk {
    issues: Vec<Issue>,
    /// The FHIRPath of the value being checked; pushed to and truncated as the walk descends.
    path: String,
    /// Set once [`MAX_ISSUES`] issues are recorded: the walk then unwinds without further checks.
    stopped: bool,
}

impl Walk {
    fn report(&mut self, code: IssueType, diagnostics: String) {
        if self.issues.len() >= MAX_ISSUES {
            self.stopped = true;
            return;
        }
        let issue = Issue::error(code, diagnostics);
        self.issues.push(if self.path.is_empty() {
            issue
        } else {
            issue.at(self.path.clone())
        });
    }

    /// Reports an issue about the member `name` of the current object, without keeping it on the
    /// path.
    fn report_member(&mut self, name: &str, code: IssueType, diagnostics: String) {
        let len = self.path.len();
        self.push_name(name);
        self.report(code, diagnostics);
        self.path.truncate(len);
    }

    fn push_name(&mut self, name: &str) {
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
    }

    fn push_index(&mut self, index: usize) {
        // Writing to a String cannot fail.
        let _ = write!(self.path, "[{index}]");
    }

    /// Checks a resource: at the top level, or wherever a Resource-typed element holds one.
    fn resource(&mut self, value: &Value, depth: usize) {
        let Value::Object(map) = value else {
            self.report(
                IssueType::Invalid,
                format!(
                    "A resource must be a JSON object, found {}.",
                    json_kind(value)
                ),
            );
            return;
        };
        let resource_type = match map.get("resourceType") {
            None => {
                self.report(
                    IssueType::Invalid,
                    "The resource has no resourceType.".into(),
                );
                return;
            }
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                self.report(
                    IssueType::Invalid,
                    format!("resourceType must be a string, found {}.", json_kind(other)),
                );
                return;
            }
        };
        let root = crate::resource::is_resource_type(resource_type)
            .then(|| structure::type_root(resource_type))
            .flatten();
        let Some(root) = root else {
            self.report(
                IssueType::Invalid,
                format!(
                    "'{}' is not a FHIR R4 resource type.",
                    excerpt_str(resource_type)
                ),
            );
            return;
        };
        // A top-level resource's paths start with its type; a nested one's with where it sits.
        let top_level = self.path.is_empty();
        if top_level {
            self.path.push_str(resource_type);
        }
        self.object(map, root.children(), depth, true);
        if top_level {
            self.path.clear();
        }
    }

    /// Checks the members of a JSON object against the possible `children`, then that the required
    /// ones are present.
    fn object(
        &mut self,
        map: &Map<String, Value>,
        children: &'static [ElementDef],
        depth: usize,
        is_resource: bool,
    ) {
        if depth >= MAX_DEPTH {
            self.report(
                IssueType::Structure,
                format!("The content is nested more than {MAX_DEPTH} levels deep; it was not checked further."),
            );
            return;
        }
        let mut choices: [Option<(&'static ElementDef, &str)>; CHOICE_SLOTS] = [None; CHOICE_SLOTS];
        for (key, value) in map {
            if self.stopped {
                return;
            }
            if is_resource && key == "resourceType" {
                continue;
            }
            let (name, underscore) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let Some(resolved) = structure::find_child(children, name) else {
                self.report_member(
                    key,
                    IssueType::Structure,
                    unknown_element(children, key, name),
                );
                continue;
            };
            if resolved.def.choice {
                self.check_one_choice(&mut choices, resolved.def, name);
            }
            let content = resolved.content();
            if underscore {
                match content {
                    Content::Primitive(_) => self.primitive_extras(map, key, name, value, resolved.def, depth),
                    _ => self.report_member(
                        key,
                        IssueType::Structure,
                        format!("'{key}' is only allowed for primitive elements, and '{name}' is not one."),
                    ),
                }
            } else {
                self.member(map, key, value, resolved, content, depth);
            }
        }
        if !self.stopped {
            self.required(map, children);
        }
    }

    /// Records a choice element's JSON name and reports a second, different one for the same
    /// element (`valueString` next to `valueBoolean`).
    fn check_one_choice<'m>(
        &mut self,
        choices: &mut [Option<(&'static ElementDef, &'m str)>; CHOICE_SLOTS],
        def: &'static ElementDef,
        name: &'m str,
    ) {
        for slot in choices.iter_mut() {
            match slot {
                Some((seen, first)) if std::ptr::eq(*seen, def) => {
                    if *first != name {
                        let first = *first;
                        self.report_member(
                            name,
                            IssueType::Structure,
                            format!(
                                "Only one of the {} choices may be present, found '{first}' and '{name}'.",
                                def.path
                            ),
                        );
                    }
                    return;
                }
                Some(_) => {}
                None => {
                    *slot = Some((def, name));
                    return;
                }
            }
        }
    }

    /// Checks one member's value against its cardinality and content.
    fn member(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        value: &Value,
        resolved: Resolved,
        content: Content,
        depth: usize,
    ) {
        let len = self.path.len();
        self.push_name(key);
        match (value, resolved.def.many) {
            (Value::Array(items), true) => {
                if items.is_empty() {
                    self.report(
                        IssueType::Structure,
                        "Empty arrays are not allowed; leave the element out instead.".into(),
                    );
                }
                let primitive = matches!(content, Content::Primitive(_));
                for (i, item) in items.iter().enumerate() {
                    if self.stopped {
                        break;
                    }
                    let item_len = self.path.len();
                    self.push_index(i);
                    // A null keeps the place of a value that only has an id or extensions, given
                    // at the same index of the `_name` array.
                    if item.is_null() && primitive && extras_at(map, key, i) {
                        self.path.truncate(item_len);
                        continue;
                    }
                    self.value(item, resolved, content, depth);
                    self.path.truncate(item_len);
                }
            }
            (Value::Array(_), false) => self.report(
                IssueType::Structure,
                format!(
                    "{} has maximum cardinality 1; expected a single value, found an array.",
                    resolved.def.path
                ),
            ),
            (_, true) => self.report(
                IssueType::Structure,
                format!(
                    "{} has maximum cardinality *; expected an array, found {}.",
                    resolved.def.path,
                    json_kind(value)
                ),
            ),
            (_, false) => {
                // A single primitive may be null when `_name` carries its id or extensions.
                let extras_only = value.is_null()
                    && matches!(content, Content::Primitive(_))
                    && extras(map, key).is_some_and(|v| !v.is_null());
                if !extras_only {
                    self.value(value, resolved, content, depth);
                }
            }
        }
        self.path.truncate(len);
    }

    /// Checks one value (a single element or one array item).
    fn value(&mut self, value: &Value, resolved: Resolved, content: Content, depth: usize) {
        if value.is_null() {
            self.report(
                IssueType::Structure,
                "null is not allowed; leave the element out instead.".into(),
            );
            return;
        }
        match content {
            Content::Primitive(primitive) => self.primitive(value, primitive, resolved.def),
            Content::Complex(children) => match value {
                Value::Object(map) if map.is_empty() => self.report(
                    IssueType::Structure,
                    "Empty objects are not allowed; leave the element out instead.".into(),
                ),
                Value::Object(map) => self.object(map, children, depth + 1, false),
                other => self.report(
                    IssueType::Structure,
                    format!(
                        "Expected an object ({}), found {} {}.",
                        resolved.type_code.unwrap_or(resolved.def.path),
                        json_kind(other),
                        excerpt(other)
                    ),
                ),
            },
            Content::Resource => self.resource(value, depth + 1),
            // The table's own tests keep every type code known; should one slip through, its
            // content is accepted rather than rejecting valid data.
            Content::Unknown(_) => {}
        }
    }

    fn primitive(&mut self, value: &Value, primitive: Primitive, def: &ElementDef) {
        if primitive == Primitive::Xhtml {
            // Narrative.div is only checked for being a non-empty string: its XHTML content rules
            // need an XML parser, and the 1 MiB limit of `string` does not apply to it (official
            // CodeSystem and ValueSet narratives exceed it).
            match value {
                Value::String(s) if !s.is_empty() => {}
                Value::String(_) => self.report(
                    IssueType::Value,
                    "Invalid xhtml: empty strings are not allowed; leave the element out instead."
                        .into(),
                ),
                other => self.report(
                    IssueType::Structure,
                    format!(
                        "Invalid xhtml: expected a string, found {} {}.",
                        json_kind(other),
                        excerpt(other)
                    ),
                ),
            }
            return;
        }
        let json_ok = match primitive {
            Primitive::Boolean => value.is_boolean(),
            Primitive::Integer
            | Primitive::UnsignedInt
            | Primitive::PositiveInt
            | Primitive::Decimal => value.is_number(),
            _ => value.is_string(),
        };
        if let Some(problem) = primitive.check(value) {
            if json_ok {
                self.report(
                    IssueType::Value,
                    format!("Invalid {}: {problem}.", primitive.name()),
                );
            } else {
                self.report(
                    IssueType::Structure,
                    format!(
                        "Invalid {}: {problem} {}.",
                        primitive.name(),
                        excerpt(value)
                    ),
                );
            }
            return;
        }
        if def.path == "Reference.reference"
            && let Value::String(reference) = value
            && let Err(error) = crate::reference::parse(reference)
        {
            self.report(IssueType::Value, format!("Invalid reference: {}.", error.0));
        }
        if let Some(value_set) = def.binding
            && let Value::String(code) = value
            && !value_set.contains(code)
        {
            self.report(IssueType::CodeInvalid, not_in_value_set(code, value_set));
        }
    }

    /// Checks `_name`, which holds the id and extensions of the primitive `name`: an object, or
    /// for repeating elements an array aligned with `name`'s, with `null` where an item has none.
    fn primitive_extras(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        name: &str,
        value: &Value,
        def: &ElementDef,
        depth: usize,
    ) {
        let len = self.path.len();
        self.push_name(key);
        let base = map.get(name);
        match (value, def.many) {
            (Value::Array(items), true) => {
                if items.is_empty() {
                    self.report(
                        IssueType::Structure,
                        "Empty arrays are not allowed; leave the element out instead.".into(),
                    );
                }
                if let Some(Value::Array(values)) = base
                    && values.len() != items.len()
                {
                    self.report(
                        IssueType::Structure,
                        format!(
                            "'{key}' must have as many items as '{name}' to line up with it ({} and {}).",
                            items.len(),
                            values.len()
                        ),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    if self.stopped {
                        break;
                    }
                    let item_len = self.path.len();
                    self.push_index(i);
                    let value_present = matches!(base, Some(Value::Array(values)) if values.get(i).is_some_and(|v| !v.is_null()));
                    if !(item.is_null() && value_present) {
                        self.element_extras(item, depth);
                    }
                    self.path.truncate(item_len);
                }
            }
            (Value::Array(_), false) => self.report(
                IssueType::Structure,
                format!(
                    "{} has maximum cardinality 1; expected a single object, found an array.",
                    def.path
                ),
            ),
            (_, true) => self.report(
                IssueType::Structure,
                format!(
                    "{} has maximum cardinality *; expected an array, found {}.",
                    def.path,
                    json_kind(value)
                ),
            ),
            (_, false) => self.element_extras(value, depth),
        }
        self.path.truncate(len);
    }

    /// Checks one object of a `_name` member against Element (`id`, `extension`).
    fn element_extras(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Object(map) if map.is_empty() => self.report(
                IssueType::Structure,
                "Empty objects are not allowed; leave the element out instead.".into(),
            ),
            Value::Object(map) => self.object(map, structure::element_base(), depth + 1, false),
            other => self.report(
                IssueType::Structure,
                format!(
                    "Expected an object with id or extension, found {}.",
                    json_kind(other)
                ),
            ),
        }
    }

    /// Reports the required children (minimum cardinality 1 or more) that are absent. A primitive
    /// given only by its `_name` (extensions, no value) counts as present, as the spec allows.
    fn required(&mut self, map: &Map<String, Value>, children: &'static [ElementDef]) {
        for def in children.iter().filter(|d| d.min > 0) {
            let present = map.keys().any(|key| {
                let name = key.strip_prefix('_').unwrap_or(key);
                if def.choice {
                    structure::find_child(children, name).is_some_and(|r| std::ptr::eq(r.def, def))
                } else {
                    name == def.name
                }
            });
            if !present {
                let len = self.path.len();
                self.push_name(def.name);
                if def.choice {
                    self.path.push_str("[x]");
                }
                self.report(
                    IssueType::Required,
                    format!(
                        "{} is required (minimum cardinality {}) but missing.",
                        def.path, def.min
                    ),
                );
                self.path.truncate(len);
            }
        }
    }
}

/// Explains why `key` is not an element here, naming the choice it was probably meant for.
fn unknown_element(children: &'static [ElementDef], key: &str, name: &str) -> String {
    let choice = children
        .iter()
        .filter(|d| d.choice)
        .find(|d| name.starts_with(d.name));
    match choice {
        Some(def) if def.name == name => {
            format!(
                "'{key}' needs a type suffix: {} is a choice of {}.",
                def.path,
                type_list(def)
            )
        }
        Some(def) => format!(
            "Unknown element '{}': {} allows only the types {}.",
            excerpt_str(key),
            def.path,
            type_list(def)
        ),
        None => format!("Unknown element '{}'.", excerpt_str(key)),
    }
}

/// How many of a ValueSet's codes a message lists before summarising the rest.
const LISTED_CODES: usize = 10;

/// Explains that `code` is not in `value_set`, listing the allowed codes (the first
/// [`LISTED_CODES`] of long lists).
fn not_in_value_set(code: &str, value_set: &ValueSet) -> String {
    let shown = value_set
        .codes
        .get(..LISTED_CODES)
        .unwrap_or(value_set.codes);
    let rest = value_set.codes.len() - shown.len();
    let more = if rest > 0 {
        format!(", ... and {rest} more")
    } else {
        String::new()
    };
    format!(
        "'{}' is not a code of {} ({}{more}).",
        excerpt_str(code),
        value_set.url,
        shown.join(", ")
    )
}

/// The types of a choice for a message; Extension.value[x]'s fifty are summarised.
fn type_list(def: &ElementDef) -> String {
    if def.types.len() <= 12 {
        def.types.join(", ")
    } else {
        format!("the {} types listed in the specification", def.types.len())
    }
}

/// The `_name` sibling of `key` in `map`. Allocates the key, so it is only looked up when a null
/// needs explaining.
fn extras<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(&format!("_{key}"))
}

/// True when the `_name` array of `key` has a non-null item at `index`.
fn extras_at(map: &Map<String, Value>, key: &str, index: usize) -> bool {
    matches!(extras(map, key), Some(Value::Array(items)) if items.get(index).is_some_and(|v| !v.is_null()))
}

/// A short rendering of a JSON value for messages.
fn excerpt(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{}\"", excerpt_str(s)),
        Value::Array(_) => "[...]".into(),
        Value::Object(_) => "{...}".into(),
        other => excerpt_str(&other.to_string()),
    }
}

/// The first 64 characters of `s`, with an ellipsis when it is longer.
fn excerpt_str(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}
