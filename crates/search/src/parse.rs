//! Parsing of search parameters into a typed [`SearchQuery`]
//! (<https://hl7.org/fhir/R4/search.html>).
//!
//! Owns: turning percent-decoded `(name, value)` pairs, in URL order, into clauses (OR by comma,
//! AND by repetition), with escaping, modifiers, prefixes, chains, reverse chains (`_has`) and the
//! result parameters (`_sort`, `_count`, `_include`...). Malformed values are `Invalid` errors
//! naming the parameter; unknown or unsupported parameters are reported in
//! [`ParsedSearch::unknown`] and as warnings, so the caller can apply `Prefer: handling=strict`.
//!
//! Does not: execute anything, percent-decode (the HTTP layer does), or support the token
//! modifiers `:below`, `:above`, `:in`, `:not-in` and `:of-type`, `_filter`, `_text`,
//! `_content`, `_query`, `_list` and `_contained`.

use crate::extract::implicit_range;
use crate::normalize::normalize_string;
use crate::query::{
    Clause, Include, Modifier, ParamClause, ParamRef, ParamType, Prefix, SearchQuery, SearchValue,
    Sort, Summary, TokenSystem, Total,
};
use crate::registry::{self, SearchParamDef};
use concord_fhir::primitive::{is_id, search_date_range};
use concord_fhir::resource::is_resource_type;
use concord_fhir::{Error, Issue, IssueType};

/// The largest page size a client may ask for; larger `_count`s are capped to it.
pub const MAX_COUNT: u32 = 1000;

/// A parsed search and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    /// Parameter names that are not known for the searched type, or known but not supported.
    pub unknown: Vec<String>,
    /// Warnings: unknown, unsupported and ignored parameters.
    pub issues: Vec<Issue>,
}

/// Parameters of the specification that Concord knows but does not implement.
const UNSUPPORTED_CONTROL: &[&str] = &[
    "_list",
    "_contained",
    "_containedType",
    "_filter",
    "_query",
    "_text",
    "_content",
];

fn invalid(diagnostics: impl Into<String>) -> Error {
    Error::invalid(diagnostics)
}

/// Parses a search over `resource_type` (`None` for a system search) from percent-decoded
/// name/value pairs in URL order.
pub fn parse_search(
    resource_type: Option<&str>,
    params: &[(String, String)],
) -> Result<ParsedSearch, Error> {
    if let Some(t) = resource_type
        && !is_resource_type(t)
    {
        return Err(invalid(format!("'{t}' is not a FHIR R4 resource type")));
    }
    let mut out = ParsedSearch {
        query: SearchQuery {
            resource_type: resource_type.map(str::to_string),
            ..SearchQuery::default()
        },
        unknown: Vec::new(),
        issues: Vec::new(),
    };
    // `_type` decides which parameters a system search may use, so it is read first.
    for (name, value) in params {
        if name == "_type" && !value.is_empty() {
            let mut types = Vec::new();
            for t in split_unescaped(value, ',') {
                let t = unescape(t.trim());
                if !is_resource_type(&t) {
                    return Err(invalid(format!(
                        "_type: '{t}' is not a FHIR R4 resource type"
                    )));
                }
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            if resource_type.is_some() {
                out.issues.push(Issue::warning(
                    IssueType::NotSupported,
                    "_type is only used by a system search (GET [base]?_type=...); it was ignored",
                ));
            } else {
                out.query.types.extend(types);
            }
        }
    }
    let scope: Vec<String> = match resource_type {
        Some(t) => vec![t.to_string()],
        None if !out.query.types.is_empty() => out.query.types.clone(),
        None => vec!["Resource".to_string()],
    };
    for (name, value) in params {
        parse_one(&scope, name, value, &mut out)?;
    }
    Ok(out)
}

fn parse_one(
    scope: &[String],
    name: &str,
    value: &str,
    out: &mut ParsedSearch,
) -> Result<(), Error> {
    let q = &mut out.query;
    match name {
        "_type" | "_format" | "_pretty" => return Ok(()),
        _ => {}
    }
    if value.is_empty() {
        out.issues.push(Issue::warning(
            IssueType::Value,
            format!("the parameter '{name}' has an empty value and was ignored"),
        ));
        return Ok(());
    }
    match name {
        "_count" => {
            let n: u32 = value
                .parse()
                .map_err(|_| invalid(format!("_count: '{value}' is not a non-negative integer")))?;
            q.count = Some(n.min(MAX_COUNT));
        }
        "_offset" => {
            q.offset = value.parse().map_err(|_| {
                invalid(format!("_offset: '{value}' is not a non-negative integer"))
            })?;
        }
        "_snapshot" => {
            q.snapshot = Some(
                value
                    .parse()
                    .map_err(|_| invalid(format!("_snapshot: '{value}' is not an integer")))?,
            );
        }
        "_summary" => {
            q.summary = Some(match value {
                "true" => Summary::True,
                "text" => Summary::Text,
                "data" => Summary::Data,
                "count" => Summary::Count,
                "false" => Summary::False,
                _ => {
                    return Err(invalid(format!(
                        "_summary: '{value}' is not one of true, text, data, count, false"
                    )));
                }
            });
        }
        "_total" => {
            q.total = Some(match value {
                "none" => Total::None,
                "estimate" => Total::Estimate,
                "accurate" => Total::Accurate,
                _ => {
                    return Err(invalid(format!(
                        "_total: '{value}' is not one of none, estimate, accurate"
                    )));
                }
            });
        }
        "_elements" => {
            for e in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !e
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
                {
                    return Err(invalid(format!("_elements: '{e}' is not an element name")));
                }
                if !q.elements.iter().any(|x| x == e) {
                    q.elements.push(e.to_string());
                }
            }
        }
        "_sort" => {
            for key in value.split(',') {
                let key = key.trim();
                let (code, descending) = match key.strip_prefix('-') {
                    Some(c) => (c, true),
                    None => (key, false),
                };
                let param = sort_param(scope, code).ok_or_else(|| {
                    invalid(format!(
                        "_sort: '{code}' is not a search parameter that results can be sorted by"
                    ))
                })?;
                q.sort.push(Sort { param, descending });
            }
        }
        _ => {
            if let Some(modifier) = name
                .strip_prefix("_include")
                .or_else(|| name.strip_prefix("_revinclude"))
            {
                let reverse = name.starts_with("_revinclude");
                let iterate = match modifier {
                    "" => false,
                    ":iterate" | ":recurse" => true,
                    _ => {
                        return Err(invalid(format!(
                            "{name}: the only modifiers of _include and _revinclude are :iterate and :recurse"
                        )));
                    }
                };
                let include = parse_include(name, value, iterate)?;
                if reverse {
                    q.revincludes.push(include)
                } else {
                    q.includes.push(include)
                }
                return Ok(());
            }
            let code = name.split([':', '.']).next().unwrap_or(name);
            if UNSUPPORTED_CONTROL.contains(&code) {
                not_supported(out, name);
                return Ok(());
            }
            match parse_clause(scope, name, value)? {
                Resolved::Clause(c) => out.query.clauses.push(c),
                Resolved::Unknown => {
                    out.unknown.push(name.to_string());
                    let types = scope.join(", ");
                    out.issues.push(Issue::warning(
                        IssueType::NotSupported,
                        format!(
                            "the search parameter '{name}' is not known for {types} and was ignored"
                        ),
                    ));
                }
                Resolved::Unsupported => not_supported(out, name),
            }
        }
    }
    Ok(())
}

fn not_supported(out: &mut ParsedSearch, name: &str) {
    out.unknown.push(name.to_string());
    out.issues.push(Issue::warning(
        IssueType::NotSupported,
        format!("the search parameter '{name}' is not supported by this server and was ignored"),
    ));
}

enum Resolved {
    Clause(Clause),
    Unknown,
    Unsupported,
}

/// The definition of `code` shared by every type in `scope`: the same parameter type everywhere.
fn lookup_in(scope: &[String], code: &str) -> Option<&'static SearchParamDef> {
    let mut found: Option<&'static SearchParamDef> = None;
    for t in scope {
        let def = registry::lookup(t, code)?;
        match found {
            Some(f) if f.param_type != def.param_type => return None,
            _ => found = Some(found.unwrap_or(def)),
        }
    }
    found
}

fn sort_param(scope: &[String], code: &str) -> Option<ParamRef> {
    match code {
        "_id" => Some(ParamRef::Id),
        "_lastUpdated" => Some(ParamRef::LastUpdated),
        _ => {
            let def = lookup_in(scope, code)?;
            (def.is_supported() && def.param_type != ParamType::Composite).then(|| {
                ParamRef::Indexed {
                    code: def.code.to_string(),
                    param_type: def.param_type,
                }
            })
        }
    }
}

fn parse_include(name: &str, value: &str, iterate: bool) -> Result<Include, Error> {
    if value == "*" {
        return Ok(Include {
            source_type: "*".into(),
            param: None,
            target_type: None,
            iterate,
        });
    }
    let mut parts = value.split(':');
    let source = parts.next().unwrap_or_default();
    let param = parts.next();
    let target = parts.next();
    if parts.next().is_some() || param.is_none() {
        return Err(invalid(format!(
            "{name}: '{value}' is not of the form Type:parameter[:targetType]"
        )));
    }
    if source != "*" && !is_resource_type(source) {
        return Err(invalid(format!(
            "{name}: '{source}' is not a FHIR R4 resource type"
        )));
    }
    let param = match param {
        Some("*") | None => None,
        Some(p) => {
            if source != "*" {
                let def = registry::lookup(source, p)
                    .filter(|d| d.param_type == ParamType::Reference)
                    .ok_or_else(|| {
                        invalid(format!(
                            "{name}: '{p}' is not a reference search parameter of {source}"
                        ))
                    })?;
                if let Some(t) = target
                    && !def.targets.is_empty()
                    && !def.targets.contains(&t)
                {
                    return Err(invalid(format!("{name}: {source}:{p} cannot point at {t}")));
                }
            }
            Some(p.to_string())
        }
    };
    if let Some(t) = target
        && !is_resource_type(t)
    {
        return Err(invalid(format!(
            "{name}: '{t}' is not a FHIR R4 resource type"
        )));
    }
    Ok(Include {
        source_type: source.to_string(),
        param,
        target_type: target.map(str::to_string),
        iterate,
    })
}

/// Parses one search parameter (possibly chained or reverse-chained) of a type in `scope`.
fn parse_clause(scope: &[String], name: &str, value: &str) -> Result<Resolved, Error> {
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(name, rest, value);
    }
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(scope, name, head, rest, value);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    let (param, def) = match code {
        "_id" => (ParamRef::Id, None),
        "_lastUpdated" => (ParamRef::LastUpdated, None),
        _ => {
            let Some(def) = lookup_in(scope, code) else {
                return Ok(Resolved::Unknown);
            };
            if !def.is_supported() {
                return Ok(Resolved::Unsupported);
            }
            (
                ParamRef::Indexed {
                    code: def.code.to_string(),
                    param_type: def.param_type,
                },
                Some(def),
            )
        }
    };
    let param_type = match (&param, def) {
        (ParamRef::Id, _) => ParamType::Token,
        (ParamRef::LastUpdated, _) => ParamType::Date,
        (_, Some(d)) => d.param_type,
        (_, None) => return Ok(Resolved::Unknown),
    };
    let modifier = parse_modifier(name, param_type, def, modifier, &param, value)?;
    if let Modifier::Missing(_) = modifier {
        return Ok(Resolved::Clause(Clause::Param(ParamClause {
            param,
            modifier,
            values: Vec::new(),
        })));
    }
    let mut values = Vec::new();
    for raw in split_unescaped(value, ',') {
        if raw.is_empty() {
            continue;
        }
        values.push(parse_value(name, param_type, def, &modifier, raw)?);
    }
    if values.is_empty() {
        return Err(invalid(format!("{name}: '{value}' has no values")));
    }
    Ok(Resolved::Clause(Clause::Param(ParamClause {
        param,
        modifier,
        values,
    })))
}

fn parse_modifier(
    name: &str,
    param_type: ParamType,
    def: Option<&SearchParamDef>,
    modifier: Option<&str>,
    param: &ParamRef,
    value: &str,
) -> Result<Modifier, Error> {
    let Some(m) = modifier else {
        return Ok(Modifier::None);
    };
    let unfit = || {
        invalid(format!(
            "{name}: the modifier ':{m}' is not valid for a {} parameter",
            param_type.code()
        ))
    };
    if m == "missing" {
        if matches!(param, ParamRef::Id | ParamRef::LastUpdated) {
            return Err(unfit());
        }
        return match value {
            "true" => Ok(Modifier::Missing(true)),
            "false" => Ok(Modifier::Missing(false)),
            _ => Err(invalid(format!(
                "{name}: ':missing' takes true or false, not '{value}'"
            ))),
        };
    }
    let modifier = match (param_type, m) {
        (ParamType::String, "exact") => Modifier::Exact,
        (ParamType::String | ParamType::Uri, "contains") => Modifier::Contains,
        (ParamType::Token, "not") => Modifier::Not,
        (ParamType::Token, "text") if *param != ParamRef::Id => Modifier::Text,
        (ParamType::Uri, "below") => Modifier::Below,
        (ParamType::Uri, "above") => Modifier::Above,
        (ParamType::Reference, "identifier") => Modifier::Identifier,
        (ParamType::Token, "below" | "above" | "in" | "not-in" | "of-type") => {
            return Err(Error::not_supported(format!(
                "{name}: the token modifier ':{m}' is not supported"
            )));
        }
        (ParamType::Reference, t) if is_resource_type(t) => {
            if let Some(d) = def
                && !d.targets.is_empty()
                && !d.targets.contains(&t)
            {
                return Err(invalid(format!(
                    "{name}: the parameter '{}' cannot point at {t}",
                    d.code
                )));
            }
            Modifier::Type(t.to_string())
        }
        _ => return Err(unfit()),
    };
    Ok(modifier)
}

fn parse_value(
    name: &str,
    param_type: ParamType,
    def: Option<&SearchParamDef>,
    modifier: &Modifier,
    raw: &str,
) -> Result<SearchValue, Error> {
    Ok(match (param_type, modifier) {
        (ParamType::String, _) if def.is_some_and(SearchParamDef::is_phonetic) => {
            // The index holds codes in both columns, so `:exact` compares codes too. A value
            // with no sound (no Latin letter) keeps its normalised text, which no indexed code
            // equals, so it matches nothing.
            let value = unescape(raw);
            let code =
                crate::normalize::phonetic_code(&value).unwrap_or_else(|| normalize_string(&value));
            SearchValue::String {
                normalized: code.clone(),
                exact: code,
            }
        }
        (ParamType::Token, Modifier::Text) | (ParamType::String, _) => {
            let exact = unescape(raw);
            SearchValue::String {
                normalized: normalize_string(&exact),
                exact,
            }
        }
        (ParamType::Token, _) | (ParamType::Reference, Modifier::Identifier) => {
            token_value(name, raw)?
        }
        (ParamType::Date, _) => {
            let (prefix, rest) = split_prefix(name, raw)?;
            let range = search_date_range(rest).ok_or_else(|| {
                invalid(format!(
                    "{name}: '{raw}' is not a valid date, dateTime or instant"
                ))
            })?;
            SearchValue::Date { prefix, range }
        }
        (ParamType::Number, _) => {
            let (prefix, rest) = split_prefix(name, raw)?;
            let (value, low, high) = implicit_range(rest)
                .ok_or_else(|| invalid(format!("{name}: '{raw}' is not a valid number")))?;
            SearchValue::Number {
                prefix,
                value,
                low,
                high,
            }
        }
        (ParamType::Quantity, _) => {
            let parts = split_unescaped(raw, '|');
            if parts.len() > 3 || parts.len() == 2 {
                return Err(invalid(format!(
                    "{name}: '{raw}' is not of the form [prefix]number[|system|code]"
                )));
            }
            let (prefix, number) = split_prefix(name, parts[0])?;
            let (value, low, high) = implicit_range(number).ok_or_else(|| {
                invalid(format!(
                    "{name}: '{raw}' does not start with a valid number"
                ))
            })?;
            let part = |i: usize| parts.get(i).map(|p| unescape(p)).filter(|p| !p.is_empty());
            SearchValue::Quantity {
                prefix,
                value,
                low,
                high,
                system: part(1),
                code: part(2),
            }
        }
        (ParamType::Reference, _) => reference_value(name, raw)?,
        (ParamType::Uri, _) => SearchValue::Uri(unescape(raw)),
        (ParamType::Composite, _) => {
            let Some(def) = def else {
                return Err(invalid(format!("{name}: not a composite parameter")));
            };
            let parts = split_unescaped(raw, '$');
            if parts.len() != def.components.len() {
                return Err(invalid(format!(
                    "{name}: '{raw}' has {} parts separated by '$' but the parameter has {} components",
                    parts.len(),
                    def.components.len()
                )));
            }
            let mut values = Vec::with_capacity(parts.len());
            for (part, component) in parts.iter().zip(def.components) {
                if part.is_empty() {
                    return Err(invalid(format!("{name}: '{raw}' has an empty component")));
                }
                values.push(parse_value(
                    name,
                    component.param_type,
                    None,
                    &Modifier::None,
                    part,
                )?);
            }
            SearchValue::Composite(values)
        }
        (ParamType::Special, _) => {
            return Err(Error::not_supported(format!(
                "{name}: special parameters are not supported"
            )));
        }
    })
}

fn token_value(name: &str, raw: &str) -> Result<SearchValue, Error> {
    let parts = split_unescaped(raw, '|');
    match parts.as_slice() {
        [code] => Ok(SearchValue::Token {
            system: TokenSystem::Any,
            code: Some(unescape(code)),
        }),
        ["", ""] => Err(invalid(format!(
            "{name}: '{raw}' gives neither a system nor a code"
        ))),
        ["", code] => Ok(SearchValue::Token {
            system: TokenSystem::NoSystem,
            code: Some(unescape(code)),
        }),
        [system, code] => Ok(SearchValue::Token {
            system: TokenSystem::Is(unescape(system)),
            code: (!code.is_empty()).then(|| unescape(code)),
        }),
        _ => Err(invalid(format!(
            "{name}: '{raw}' has more than one unescaped '|'"
        ))),
    }
}

fn reference_value(name: &str, raw: &str) -> Result<SearchValue, Error> {
    use concord_fhir::reference::{Reference, parse};
    let parts = split_unescaped(raw, '|');
    let (target, version) = match parts.as_slice() {
        [t] => (unescape(t), None),
        [t, v] => (unescape(t), Some(unescape(v)).filter(|v| !v.is_empty())),
        _ => return Err(invalid(format!("{name}: '{raw}' is not a valid reference"))),
    };
    let bad = || {
        invalid(format!(
            "{name}: '{raw}' is not a reference of the form [Type/]id, an absolute URL or url|version"
        ))
    };
    if is_id(&target) && version.is_none() {
        return Ok(SearchValue::Reference {
            resource_type: None,
            id: Some(target),
            url: None,
            version: None,
        });
    }
    let value = match parse(&target).map_err(|_| bad())? {
        Reference::Relative {
            resource_type, id, ..
        } if version.is_none() => SearchValue::Reference {
            resource_type: Some(resource_type.to_string()),
            id: Some(id.to_string()),
            url: None,
            version: None,
        },
        Reference::Absolute {
            url,
            resource_type,
            id,
            ..
        } => SearchValue::Reference {
            resource_type: resource_type.map(str::to_string),
            id: id.map(str::to_string),
            url: Some(url.to_string()),
            version,
        },
        Reference::Urn(urn) => SearchValue::Reference {
            resource_type: None,
            id: None,
            url: Some(urn.to_string()),
            version,
        },
        _ => return Err(bad()),
    };
    Ok(value)
}

/// Splits a leading comparison prefix (`ge2020`) off an ordered value.
fn split_prefix<'v>(name: &str, raw: &'v str) -> Result<(Prefix, &'v str), Error> {
    let letters = raw.bytes().take_while(u8::is_ascii_alphabetic).count();
    if letters == 0 {
        return Ok((Prefix::Eq, raw));
    }
    let prefix = match &raw[..letters] {
        "eq" => Prefix::Eq,
        "ne" => Prefix::Ne,
        "gt" => Prefix::Gt,
        "lt" => Prefix::Lt,
        "ge" => Prefix::Ge,
        "le" => Prefix::Le,
        "sa" => Prefix::Sa,
        "eb" => Prefix::Eb,
        "ap" => Prefix::Ap,
        other if other.len() == 2 => {
            return Err(invalid(format!(
                "{name}: '{raw}' is not a valid value: '{other}' is not a search prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)"
            )));
        }
        // A longer word is not a mistyped prefix but a value of the wrong kind ("yesterday").
        _ => {
            return Err(invalid(format!(
                "{name}: '{raw}' is not a valid value: expected a number, date or quantity, optionally after a two-letter prefix such as ge"
            )));
        }
    };
    Ok((prefix, &raw[letters..]))
}

fn parse_chain(
    scope: &[String],
    name: &str,
    head: &str,
    rest: &str,
    value: &str,
) -> Result<Resolved, Error> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let Some(def) = lookup_in(scope, code) else {
        return Ok(Resolved::Unknown);
    };
    if def.param_type != ParamType::Reference {
        return Err(invalid(format!(
            "{name}: only reference parameters can be chained, and '{code}' is a {} parameter",
            def.param_type.code()
        )));
    }
    if !def.is_supported() {
        return Ok(Resolved::Unsupported);
    }
    let candidates: Vec<&str> = match type_modifier {
        Some(t) => {
            if !is_resource_type(t) {
                return Err(invalid(format!(
                    "{name}: '{t}' is not a FHIR R4 resource type"
                )));
            }
            if !def.targets.is_empty() && !def.targets.contains(&t) {
                return Err(invalid(format!(
                    "{name}: the parameter '{code}' cannot point at {t}"
                )));
            }
            vec![t]
        }
        None if def.targets.is_empty() => {
            return Err(invalid(format!(
                "{name}: the targets of '{code}' are not known; name one, as in {code}:Type.{rest}"
            )));
        }
        None => def.targets.to_vec(),
    };
    let mut inner: Option<Clause> = None;
    let mut target_types = Vec::new();
    let mut unsupported = false;
    for t in candidates {
        match parse_clause(&[t.to_string()], rest, value)? {
            Resolved::Clause(c) => match &inner {
                None => {
                    inner = Some(c);
                    target_types.push(t.to_string());
                }
                Some(first) if *first == c => target_types.push(t.to_string()),
                // A target whose parameter of that name has another type cannot share the clause.
                Some(_) => {}
            },
            Resolved::Unsupported => unsupported = true,
            Resolved::Unknown => {}
        }
    }
    match inner {
        Some(inner) => Ok(Resolved::Clause(Clause::Chain {
            reference: def.code.to_string(),
            target_types,
            inner: Box::new(inner),
        })),
        None if unsupported => Ok(Resolved::Unsupported),
        None => Err(invalid(format!(
            "{name}: no resource type that '{code}' can point at ({}) has the search parameter in '{rest}'",
            def.targets.join(", ")
        ))),
    }
}

fn parse_has(name: &str, rest: &str, value: &str) -> Result<Resolved, Error> {
    // `_has:Observation:patient:code` or nested `_has:Observation:patient:_has:AuditEvent:entity:user`.
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(reference), Some(inner_name)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!(
            "{name}: _has takes the form _has:Type:reference:parameter"
        )));
    };
    if !is_resource_type(source) {
        return Err(invalid(format!(
            "{name}: '{source}' is not a FHIR R4 resource type"
        )));
    }
    let def = registry::lookup(source, reference)
        .filter(|d| d.param_type == ParamType::Reference)
        .ok_or_else(|| {
            invalid(format!(
                "{name}: '{reference}' is not a reference search parameter of {source}"
            ))
        })?;
    match parse_clause(&[source.to_string()], inner_name, value)? {
        Resolved::Clause(inner) => Ok(Resolved::Clause(Clause::Has {
            source_type: source.to_string(),
            reference: def.code.to_string(),
            inner: Box::new(inner),
        })),
        Resolved::Unsupported => Ok(Resolved::Unsupported),
        Resolved::Unknown => Err(invalid(format!(
            "{name}: '{inner_name}' is not a search parameter of {source}"
        ))),
    }
}

/// Splits on `sep` where it is not escaped by a backslash; the pieces keep their escapes.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Removes the search escapes `\,` `\$` `\|` `\\`; any other backslash is kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, ',' | '$' | '|' | '\\')
        {
            out.push(next);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}
