//! A parsed FHIR search, independent of any database.
//!
//! Owns: the typed form of a search request that [`crate::parse`] produces and stores compile.
//! Clauses are AND-ed; the values inside one clause are OR-ed (comma-separated in the URL).

use concord_fhir::primitive::DateRange;

/// A search over one resource type, or over all types (system search) when `resource_type` is
/// `None` (then `types` may restrict it, from `_type`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    pub resource_type: Option<String>,
    /// `_type` on a system search.
    pub types: Vec<String>,
    /// AND-ed clauses.
    pub clauses: Vec<Clause>,
    pub sort: Vec<Sort>,
    /// `_count`: page size. `None` means the server default.
    pub count: Option<u32>,
    /// Position of the page's first entry in the result (Concord's `_offset` paging parameter).
    pub offset: u32,
    /// The store snapshot the first page was taken at (Concord's `_snapshot` paging parameter), so
    /// later pages see the same result set while others write.
    pub snapshot: Option<i64>,
    pub summary: Option<Summary>,
    /// `_elements`: top-level element names to keep.
    pub elements: Vec<String>,
    pub total: Option<Total>,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
}

/// One AND-ed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// A parameter of the searched type with OR-ed values.
    Param(ParamClause),
    /// `reference.param=value` or `reference:Type.param=value`: resources whose `reference`
    /// parameter points at a resource of one of `target_types` that matches `inner`.
    Chain {
        reference: String,
        target_types: Vec<String>,
        inner: Box<Clause>,
    },
    /// `_has:Source:reference:param=value`: resources that some `source_type` resource points at
    /// through its `reference` parameter, where that source matches `inner`.
    Has {
        source_type: String,
        reference: String,
        inner: Box<Clause>,
    },
}

/// One parameter with its modifier and OR-ed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamClause {
    pub param: ParamRef,
    pub modifier: Modifier,
    /// OR-ed values. Empty only for `:missing`.
    pub values: Vec<SearchValue>,
}

/// Which parameter a clause or sort key is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamRef {
    /// `_id`: matched against the logical id.
    Id,
    /// `_lastUpdated`: matched against the version's lastUpdated.
    LastUpdated,
    /// A parameter held in the index tables, by code, with its type.
    Indexed { code: String, param_type: ParamType },
}

/// The search parameter types of R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    pub fn from_code(code: &str) -> Option<ParamType> {
        Some(match code {
            "number" => ParamType::Number,
            "date" => ParamType::Date,
            "string" => ParamType::String,
            "token" => ParamType::Token,
            "reference" => ParamType::Reference,
            "composite" => ParamType::Composite,
            "quantity" => ParamType::Quantity,
            "uri" => ParamType::Uri,
            "special" => ParamType::Special,
            _ => return None,
        })
    }

    pub const fn code(self) -> &'static str {
        match self {
            ParamType::Number => "number",
            ParamType::Date => "date",
            ParamType::String => "string",
            ParamType::Token => "token",
            ParamType::Reference => "reference",
            ParamType::Composite => "composite",
            ParamType::Quantity => "quantity",
            ParamType::Uri => "uri",
            ParamType::Special => "special",
        }
    }
}

/// Search modifiers (<https://hl7.org/fhir/R4/search.html#modifiers>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    None,
    /// string: case- and accent-sensitive whole-value match.
    Exact,
    /// string and uri: substring match.
    Contains,
    /// `:missing=true|false`.
    Missing(bool),
    /// token: no value matches.
    Not,
    /// token: match on the display/text, as a string search.
    Text,
    /// reference: match on `Reference.identifier` (values are tokens).
    Identifier,
    /// uri: the value is a prefix of the indexed uri. (Token `:below` is not supported.)
    Below,
    /// uri: the indexed uri is a prefix of the value.
    Above,
    /// reference `:[type]`: the target must be of this type.
    Type(String),
}

/// Comparison prefixes for ordered types (<https://hl7.org/fhir/R4/search.html#prefix>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Prefix {
    #[default]
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// Which system a token value asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system.
    Any,
    /// `|code`: no system.
    NoSystem,
    /// `system|code` or `system|`.
    Is(String),
}

/// One value to match.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchValue {
    /// string (and token `:text`): `normalized` as [`crate::normalize::normalize_string`] makes it,
    /// `exact` as given.
    String {
        normalized: String,
        exact: String,
    },
    /// token (and reference `:identifier`): `code` is `None` for `system|`.
    Token {
        system: TokenSystem,
        code: Option<String>,
    },
    Date {
        prefix: Prefix,
        range: DateRange,
    },
    /// number: `low`/`high` is the implicit range of the value's precision.
    Number {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
    },
    Quantity {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    /// reference: a relative `[Type/]id`, an absolute URL, or a canonical (`url|version`).
    Reference {
        resource_type: Option<String>,
        id: Option<String>,
        url: Option<String>,
        version: Option<String>,
    },
    Uri(String),
    /// composite: one value per component, `$`-separated in the URL.
    Composite(Vec<SearchValue>),
}

/// `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub param: ParamRef,
    pub descending: bool,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    None,
    Estimate,
    Accurate,
}

/// `_include` / `_revinclude` (<https://hl7.org/fhir/R4/search.html#include>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The resource type that holds the reference parameter (`*` for any).
    pub source_type: String,
    /// The reference parameter's code; `None` for `*` (every reference parameter).
    pub param: Option<String>,
    /// Restricts the target type (`_include=Observation:subject:Patient`).
    pub target_type: Option<String>,
    /// `:iterate` (or the R3 `:recurse`).
    pub iterate: bool,
}
