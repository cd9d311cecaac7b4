//! The values a resource is indexed under, one [`IndexEntry`] per (parameter, value).
//!
//! Owns: the backend-neutral shape of index values. Stores persist these as they are; all
//! normalisation (case, accents, date ranges, number precision) has already happened.

/// One value of one search parameter for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter's code, e.g. `name`, `_tag`, `code-value-quantity`.
    pub code: String,
    pub value: IndexValue,
}

/// An index value, by search parameter type.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `string` parameters: `normalized` is lower-cased with accents and punctuation folded
    /// (see [`crate::normalize::normalize_string`]); `exact` is the value as written.
    String { normalized: String, exact: String },
    /// `token` parameters. `text` is the normalised display or text, for `:text`.
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// `date` parameters: the inclusive UTC millisecond range the value covers (a Period's start
    /// and end; an open end is `i64::MIN` or `i64::MAX`).
    Date { low: i64, high: i64 },
    /// `number` parameters: the value and the implicit range of its precision
    /// (`1.5` covers [1.45, 1.55)).
    Number { value: f64, low: f64, high: f64 },
    /// `quantity` parameters; `system`/`code` are the coded unit, `unit` the human one.
    Quantity {
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// `reference` parameters. A relative reference fills `resource_type` and `id`; an absolute or
    /// canonical one fills `url` (without `|version`, which goes in `version`) and, when its tail is
    /// `Type/id`, `resource_type` and `id` too. Identifier-only references fill `identifier`.
    Reference {
        resource_type: Option<String>,
        id: Option<String>,
        url: Option<String>,
        version: Option<String>,
        identifier: Option<(Option<String>, String)>,
    },
    /// `uri` parameters.
    Uri(String),
    /// `composite` parameters: one value per component, in the definition's component order.
    Composite(Vec<IndexValue>),
}
