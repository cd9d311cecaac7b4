//! Compiles a [`SearchQuery`] into SQL over the index tables and runs it.
//!
//! Owns: the SQL for every parameter type, modifier and prefix, chains and `_has`, sorting, paging
//! at a snapshot, totals, and `_include` / `_revinclude`. Does not: parse URLs (see
//! `concord_search::parse`) or shape Bundles.
//!
//! Plan: the most selective clause drives the query as `rv.seq IN (subquery)`; the others are
//! correlated `EXISTS` checks on the `(res_seq, param)` indexes. Index rows belong to versions, so
//! every candidate is checked for visibility at the snapshot on `resource_version`.
//!
//! Prefix semantics follow <https://hl7.org/fhir/R4/search.html#prefix>: a date value is the range
//! its precision implies; `eq` means the resource's range lies within the search range, `gt` that it
//! ends after it, `sa` that it starts after it, and so on. `ap` widens the search range by 10% of its
//! width (at least one day for dates), since the pure core has no clock to measure "10% of the gap
//! from now" against.

use std::collections::HashSet;

use concord_fhir::{Error, ErrorKind};
use concord_search::normalize::normalize_string;
use concord_search::query::{
    Clause, Include, Modifier, ParamClause, ParamRef, ParamType, Prefix, SearchQuery, SearchValue,
    Sort, Summary, TokenSystem, Total,
};
use concord_store::{SearchPage, StoredVersion};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::read::{VERSION_COLUMNS, max_seq, row_to_version};

/// Page size when the query names none.
pub const DEFAULT_COUNT: u32 = 50;
/// How many resources `_include`/`_revinclude` may add to one page.
const MAX_INCLUDED: usize = 5_000;
/// How many rounds of `:iterate` are followed.
const MAX_ITERATIONS: usize = 8;
const DAY_MS: i64 = 86_400_000;

pub(crate) enum SearchError {
    Db(rusqlite::Error),
    Invalid(Error),
}

impl From<rusqlite::Error> for SearchError {
    fn from(e: rusqlite::Error) -> Self {
        SearchError::Db(e)
    }
}

impl SearchError {
    pub(crate) fn into_error(self, request_id: &str) -> Error {
        match self {
            SearchError::Db(e) => crate::db_error(request_id, &e),
            SearchError::Invalid(e) => e,
        }
    }
}

fn invalid(message: String) -> SearchError {
    SearchError::Invalid(Error::new(ErrorKind::Invalid, message))
}

/// Which versions a query sees.
#[derive(Debug, Clone, Copy)]
enum Vis {
    /// The latest state (inside the current transaction).
    Current,
    /// The state at a snapshot.
    At(i64),
}

fn visible(alias: &str, vis: Vis) -> String {
    match vis {
        Vis::Current => format!("{alias}.superseded_seq IS NULL AND {alias}.body IS NOT NULL"),
        Vis::At(s) => format!(
            "{alias}.seq <= {s} AND ({alias}.superseded_seq IS NULL OR {alias}.superseded_seq > {s}) AND {alias}.body IS NOT NULL"
        ),
    }
}

/// SQL text under construction with its bound values.
struct Sql {
    params: Vec<Value>,
    aliases: usize,
    vis: Vis,
}

impl Sql {
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    fn alias(&mut self, stem: &str) -> String {
        self.aliases += 1;
        format!("{stem}{}", self.aliases)
    }
}

pub(crate) fn run(conn: &Connection, query: &SearchQuery) -> Result<SearchPage, SearchError> {
    let snapshot = max_seq(conn)?;
    let (vis, snapshot) = match query.snapshot {
        Some(s) if s < snapshot => (Vis::At(s), s),
        _ => (Vis::Current, snapshot),
    };
    let mut sql = Sql {
        params: Vec::new(),
        aliases: 0,
        vis,
    };
    let mut conditions = vec![visible("rv", vis)];
    if let Some(t) = &query.resource_type {
        conditions.push(format!("rv.resource_type = {}", sql.bind(t.clone())));
    } else if !query.types.is_empty() {
        let list: Vec<String> = query.types.iter().map(|t| sql.bind(t.clone())).collect();
        conditions.push(format!("rv.resource_type IN ({})", list.join(", ")));
    }
    let resource_type = query.resource_type.as_deref();
    let driver = query
        .clauses
        .iter()
        .enumerate()
        .map(|(i, c)| (selectivity(c), i))
        .filter(|(score, _)| *score < NEVER_DRIVES)
        .min()
        .map(|(_, i)| i);
    for (i, clause) in query.clauses.iter().enumerate() {
        let condition = if Some(i) == driver {
            clause_in(clause, "rv", resource_type, &mut sql)?
        } else {
            clause_exists(clause, "rv", &mut sql)?
        };
        conditions.push(condition);
    }
    let filter = conditions.join(" AND ");

    let count = query.count.unwrap_or(DEFAULT_COUNT);
    let summary_count = query.summary == Some(Summary::Count);
    let limit = if summary_count { 0 } else { count };
    // The COUNT query binds only the filter's values, not the sort keys'.
    let filter_params = sql.params.clone();
    let mut order = Vec::new();
    for key in &query.sort {
        order.push(sort_expression(key, &mut sql)?);
    }
    order.push("rv.seq".to_string());

    let mut matches = Vec::new();
    if limit > 0 {
        let mut values = sql.params.clone();
        values.push(i64::from(limit).into());
        values.push(i64::from(query.offset).into());
        let n = values.len();
        let text = format!(
            "SELECT {cols} FROM resource_version rv WHERE {filter} ORDER BY {order} LIMIT ?{l} OFFSET ?{n}",
            cols = prefixed_columns("rv"),
            order = order.join(", "),
            l = n - 1,
        );
        let mut stmt = conn.prepare_cached(&text)?;
        matches = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), row_to_version)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }

    let total = match query.total {
        Some(Total::None) if !summary_count => None,
        _ if !summary_count && query.offset == 0 && (matches.len() as u32) < limit => {
            Some(matches.len() as u64)
        }
        _ => {
            let text = format!("SELECT COUNT(*) FROM resource_version rv WHERE {filter}");
            let n: i64 = conn
                .prepare_cached(&text)?
                .query_row(rusqlite::params_from_iter(filter_params.iter()), |r| {
                    r.get(0)
                })?;
            Some(n as u64)
        }
    };

    let included = if matches.is_empty() {
        Vec::new()
    } else {
        includes(conn, query, &matches, vis)?
    };
    Ok(SearchPage {
        matches,
        included,
        total,
        snapshot,
    })
}

fn prefixed_columns(alias: &str) -> String {
    VERSION_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const NEVER_DRIVES: u32 = 100;

/// Lower is more selective; a clause scoring [`NEVER_DRIVES`] cannot drive (negations, `:missing`).
fn selectivity(clause: &Clause) -> u32 {
    match clause {
        Clause::Param(p) => match (&p.param, &p.modifier) {
            (_, Modifier::Not | Modifier::Missing(_)) => NEVER_DRIVES,
            (ParamRef::Id, _) => 0,
            (ParamRef::LastUpdated, _) => 40,
            (ParamRef::Indexed { param_type, .. }, modifier) => match param_type {
                ParamType::Reference => 10,
                ParamType::Token
                    if p.values.iter().all(|v| {
                        matches!(
                            v,
                            SearchValue::Token {
                                system: TokenSystem::Is(_),
                                code: Some(_)
                            }
                        )
                    }) =>
                {
                    12
                }
                ParamType::Token if *modifier == Modifier::Text => 35,
                ParamType::Token => 15,
                ParamType::Uri => 15,
                ParamType::String if *modifier == Modifier::Contains => 45,
                ParamType::String => 20,
                ParamType::Composite => 18,
                ParamType::Quantity | ParamType::Number => 30,
                ParamType::Date => 32,
                ParamType::Special => NEVER_DRIVES,
            },
        },
        Clause::Chain { inner, .. } => 25 + selectivity(inner) / 10,
        Clause::Has { inner, .. } => 28 + selectivity(inner) / 10,
    }
}

fn table_for(param_type: ParamType) -> Result<&'static str, SearchError> {
    Ok(match param_type {
        ParamType::String => "idx_string",
        ParamType::Token => "idx_token",
        ParamType::Date => "idx_date",
        ParamType::Number => "idx_number",
        ParamType::Quantity => "idx_quantity",
        ParamType::Reference => "idx_reference",
        ParamType::Uri => "idx_uri",
        ParamType::Composite | ParamType::Special => {
            return Err(invalid(format!(
                "{} parameters are not held in one index table",
                param_type.code()
            )));
        }
    })
}

fn table_for_value(value: &SearchValue) -> Result<&'static str, SearchError> {
    table_for(match value {
        SearchValue::String { .. } => ParamType::String,
        SearchValue::Token { .. } => ParamType::Token,
        SearchValue::Date { .. } => ParamType::Date,
        SearchValue::Number { .. } => ParamType::Number,
        SearchValue::Quantity { .. } => ParamType::Quantity,
        SearchValue::Reference { .. } => ParamType::Reference,
        SearchValue::Uri(_) => ParamType::Uri,
        SearchValue::Composite(_) => ParamType::Composite,
    })
}

/// A clause as `alias.seq IN (...)`: drives the query from the index.
fn clause_in(
    clause: &Clause,
    alias: &str,
    resource_type: Option<&str>,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    match clause {
        Clause::Param(p) => param_in(p, alias, resource_type, sql),
        Clause::Chain {
            reference,
            target_types,
            inner,
        } => {
            let r = sql.alias("r");
            let t = sql.alias("t");
            let vis_t = visible(&t, sql.vis);
            let targets = bind_list(target_types, sql);
            let code = sql.bind(reference.clone());
            let type_filter = resource_type
                .map(|rt| format!(" AND {r}.resource_type = {}", sql.bind(rt.to_string())))
                .unwrap_or_default();
            let inner_cond = clause_in(inner, &t, single(target_types), sql)?;
            Ok(format!(
                "{alias}.seq IN (SELECT {r}.res_seq FROM resource_version {t} JOIN idx_reference {r}
                   ON {r}.target_type = {t}.resource_type AND {r}.target_id = {t}.id
                 WHERE {t}.resource_type IN ({targets}) AND {vis_t} AND {inner_cond}
                   AND {r}.param = {code}{type_filter})"
            ))
        }
        Clause::Has {
            source_type,
            reference,
            inner,
        } => {
            let r = sql.alias("r");
            let s = sql.alias("s");
            let vis_s = visible(&s, sql.vis);
            let source = sql.bind(source_type.clone());
            let code = sql.bind(reference.clone());
            let inner_cond = clause_in(inner, &s, Some(source_type), sql)?;
            let type_filter = resource_type
                .map(|rt| format!(" AND {r}.target_type = {}", sql.bind(rt.to_string())))
                .unwrap_or_default();
            Ok(format!(
                "{alias}.id IN (SELECT {r}.target_id FROM resource_version {s} JOIN idx_reference {r} ON {r}.res_seq = {s}.seq
                 WHERE {s}.resource_type = {source} AND {vis_s} AND {inner_cond} AND {r}.param = {code}{type_filter}
                   AND {r}.target_type = {alias}.resource_type)"
            ))
        }
    }
}

/// A clause as a correlated check on `alias`.
fn clause_exists(clause: &Clause, alias: &str, sql: &mut Sql) -> Result<String, SearchError> {
    match clause {
        Clause::Param(p) => param_exists(p, alias, sql),
        Clause::Chain {
            reference,
            target_types,
            inner,
        } => {
            let r = sql.alias("r");
            let t = sql.alias("t");
            let vis_t = visible(&t, sql.vis);
            let targets = bind_list(target_types, sql);
            let code = sql.bind(reference.clone());
            let inner_cond = clause_exists(inner, &t, sql)?;
            Ok(format!(
                "EXISTS (SELECT 1 FROM idx_reference {r} JOIN resource_version {t}
                   ON {t}.resource_type = {r}.target_type AND {t}.id = {r}.target_id
                 WHERE {r}.res_seq = {alias}.seq AND {r}.param = {code} AND {r}.target_type IN ({targets})
                   AND {vis_t} AND {inner_cond})"
            ))
        }
        Clause::Has {
            source_type,
            reference,
            inner,
        } => {
            let r = sql.alias("r");
            let s = sql.alias("s");
            let vis_s = visible(&s, sql.vis);
            let source = sql.bind(source_type.clone());
            let code = sql.bind(reference.clone());
            let inner_cond = clause_exists(inner, &s, sql)?;
            Ok(format!(
                "EXISTS (SELECT 1 FROM idx_reference {r} JOIN resource_version {s} ON {s}.seq = {r}.res_seq
                 WHERE {r}.target_type = {alias}.resource_type AND {r}.target_id = {alias}.id
                   AND {r}.resource_type = {source} AND {r}.param = {code} AND {vis_s} AND {inner_cond})"
            ))
        }
    }
}

fn single(types: &[String]) -> Option<&str> {
    match types {
        [only] => Some(only),
        _ => None,
    }
}

fn bind_list(values: &[String], sql: &mut Sql) -> String {
    values
        .iter()
        .map(|v| sql.bind(v.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn param_in(
    p: &ParamClause,
    alias: &str,
    resource_type: Option<&str>,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    match &p.param {
        ParamRef::Id | ParamRef::LastUpdated => param_exists(p, alias, sql),
        ParamRef::Indexed {
            code,
            param_type: ParamType::Composite,
        } => {
            let (from, cond) = composite_join(code, &p.values, sql)?;
            let first = "c0";
            let type_filter = resource_type
                .map(|rt| format!(" AND {first}.resource_type = {}", sql.bind(rt.to_string())))
                .unwrap_or_default();
            Ok(format!(
                "{alias}.seq IN (SELECT {first}.res_seq FROM {from} WHERE {cond}{type_filter})"
            ))
        }
        ParamRef::Indexed { code, param_type } => {
            let table = table_for(*param_type)?;
            let x = sql.alias("x");
            let type_filter = resource_type
                .map(|rt| format!("{x}.resource_type = {} AND ", sql.bind(rt.to_string())))
                .unwrap_or_default();
            let code = sql.bind(code.clone());
            let values = values_cond(&x, p, sql)?;
            Ok(format!(
                "{alias}.seq IN (SELECT {x}.res_seq FROM {table} {x} WHERE {type_filter}{x}.param = {code} AND ({values}))"
            ))
        }
    }
}

fn param_exists(p: &ParamClause, alias: &str, sql: &mut Sql) -> Result<String, SearchError> {
    match &p.param {
        ParamRef::Id => {
            let mut ids = Vec::new();
            for value in &p.values {
                ids.push(sql.bind(id_value(value)?));
            }
            let negate = if p.modifier == Modifier::Not {
                "NOT "
            } else {
                ""
            };
            Ok(format!("{alias}.id {negate}IN ({})", ids.join(", ")))
        }
        ParamRef::LastUpdated => {
            let mut parts = Vec::new();
            for value in &p.values {
                let SearchValue::Date { prefix, range } = value else {
                    return Err(invalid("_lastUpdated takes date values".into()));
                };
                let col = format!("{alias}.last_updated");
                parts.push(date_cond(&col, &col, *prefix, range.low, range.high, sql));
            }
            Ok(format!("({})", parts.join(" OR ")))
        }
        ParamRef::Indexed { code, param_type } => {
            if let Modifier::Missing(missing) = p.modifier {
                return missing_cond(alias, code, *param_type, missing, sql);
            }
            if *param_type == ParamType::Composite {
                let (from, cond) = composite_join(code, &p.values, sql)?;
                return Ok(format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE c0.res_seq = {alias}.seq AND {cond})"
                ));
            }
            let table = table_for(*param_type)?;
            let x = sql.alias("x");
            let code = sql.bind(code.clone());
            let (negate, clause) = if p.modifier == Modifier::Not {
                let positive = ParamClause {
                    param: p.param.clone(),
                    modifier: Modifier::None,
                    values: p.values.clone(),
                };
                ("NOT ", values_cond(&x, &positive, sql)?)
            } else {
                ("", values_cond(&x, p, sql)?)
            };
            Ok(format!(
                "{negate}EXISTS (SELECT 1 FROM {table} {x} WHERE {x}.res_seq = {alias}.seq AND {x}.param = {code} AND ({clause}))"
            ))
        }
    }
}

fn missing_cond(
    alias: &str,
    code: &str,
    param_type: ParamType,
    missing: bool,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    let negate = if missing { "NOT " } else { "" };
    if param_type == ParamType::Composite {
        let first = sql.bind(format!("{code}$0"));
        // A composite's first component lives in whichever table its type uses; look in all.
        let tables = [
            "idx_string",
            "idx_token",
            "idx_date",
            "idx_number",
            "idx_quantity",
            "idx_reference",
            "idx_uri",
        ];
        let any: Vec<String> = tables
            .iter()
            .map(|t| format!("EXISTS (SELECT 1 FROM {t} m WHERE m.res_seq = {alias}.seq AND m.param = {first})"))
            .collect();
        return Ok(format!("{negate}({})", any.join(" OR ")));
    }
    let table = table_for(param_type)?;
    let x = sql.alias("x");
    let code = sql.bind(code.to_string());
    Ok(format!(
        "{negate}EXISTS (SELECT 1 FROM {table} {x} WHERE {x}.res_seq = {alias}.seq AND {x}.param = {code})"
    ))
}

fn id_value(value: &SearchValue) -> Result<String, SearchError> {
    match value {
        SearchValue::Token {
            code: Some(code), ..
        } => Ok(code.clone()),
        SearchValue::String { exact, .. } => Ok(exact.clone()),
        SearchValue::Uri(id) => Ok(id.clone()),
        SearchValue::Reference { id: Some(id), .. } => Ok(id.clone()),
        _ => Err(invalid("_id takes plain ids".into())),
    }
}

/// The OR of the clause's values against index alias `x`.
fn values_cond(x: &str, p: &ParamClause, sql: &mut Sql) -> Result<String, SearchError> {
    let mut parts = Vec::with_capacity(p.values.len());
    for value in &p.values {
        parts.push(value_cond(x, value, &p.modifier, sql)?);
    }
    if parts.is_empty() {
        return Err(invalid("a search parameter needs a value".into()));
    }
    Ok(parts.join(" OR "))
}

fn value_cond(
    x: &str,
    value: &SearchValue,
    modifier: &Modifier,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    Ok(match value {
        SearchValue::String { normalized, exact } => match modifier {
            Modifier::Exact => format!("{x}.exact = {}", sql.bind(exact.clone())),
            Modifier::Contains => format!(
                "{x}.normalized LIKE {} ESCAPE '\\'",
                sql.bind(format!("%{}%", like_escape(normalized)))
            ),
            Modifier::Text => format!(
                "{x}.text LIKE {} ESCAPE '\\'",
                sql.bind(format!("%{}%", like_escape(normalized)))
            ),
            _ => {
                let low = sql.bind(normalized.clone());
                let high = sql.bind(format!("{normalized}\u{10FFFF}"));
                format!("({x}.normalized >= {low} AND {x}.normalized < {high})")
            }
        },
        SearchValue::Token { system, code } => {
            let (system_col, code_col) = if *modifier == Modifier::Identifier {
                ("ident_system", "ident_value")
            } else {
                ("system", "code")
            };
            if *modifier == Modifier::Text {
                // Normalised as the stored text is, which also keeps a newline (the separator
                // of a coding's display and its concept's text) out of the pattern.
                let text = normalize_string(code.as_deref().unwrap_or_default());
                return Ok(format!(
                    "{x}.text LIKE {} ESCAPE '\\'",
                    sql.bind(format!("%{}%", like_escape(&text)))
                ));
            }
            let mut parts = Vec::new();
            match system {
                TokenSystem::Any => {}
                TokenSystem::NoSystem => parts.push(format!("{x}.{system_col} IS NULL")),
                TokenSystem::Is(s) => {
                    parts.push(format!("{x}.{system_col} = {}", sql.bind(s.clone())))
                }
            }
            if let Some(code) = code {
                parts.push(format!("{x}.{code_col} = {}", sql.bind(code.clone())));
            }
            if parts.is_empty() {
                "1".into()
            } else {
                format!("({})", parts.join(" AND "))
            }
        }
        SearchValue::Date { prefix, range } => date_cond(
            &format!("{x}.low"),
            &format!("{x}.high"),
            *prefix,
            range.low,
            range.high,
            sql,
        ),
        SearchValue::Number {
            prefix,
            value,
            low,
            high,
        } => number_cond(&format!("{x}.value"), *prefix, *value, *low, *high, sql),
        SearchValue::Quantity {
            prefix,
            value,
            low,
            high,
            system,
            code,
        } => {
            let mut cond = number_cond(&format!("{x}.value"), *prefix, *value, *low, *high, sql);
            match (system, code) {
                (Some(s), Some(c)) => {
                    cond = format!(
                        "{cond} AND {x}.system = {} AND {x}.code = {}",
                        sql.bind(s.clone()),
                        sql.bind(c.clone())
                    );
                }
                (None, Some(c)) => {
                    let c = sql.bind(c.clone());
                    cond = format!("{cond} AND ({x}.code = {c} OR {x}.unit = {c})");
                }
                (Some(s), None) => {
                    cond = format!("{cond} AND {x}.system = {}", sql.bind(s.clone()))
                }
                (None, None) => {}
            }
            format!("({cond})")
        }
        SearchValue::Reference {
            resource_type,
            id,
            url,
            version,
        } => {
            let mut parts = Vec::new();
            if let Some(id) = id {
                parts.push(format!("{x}.target_id = {}", sql.bind(id.clone())));
                let wanted_type = match modifier {
                    Modifier::Type(t) => Some(t.clone()),
                    _ => resource_type.clone(),
                };
                if let Some(t) = wanted_type {
                    parts.push(format!("{x}.target_type = {}", sql.bind(t)));
                }
            } else if let Some(url) = url {
                parts.push(format!("{x}.url = {}", sql.bind(url.clone())));
                if let Some(v) = version {
                    parts.push(format!("{x}.version = {}", sql.bind(v.clone())));
                }
            } else {
                return Err(invalid(
                    "a reference search value needs an id or a URL".into(),
                ));
            }
            format!("({})", parts.join(" AND "))
        }
        SearchValue::Uri(uri) => match modifier {
            Modifier::Below => format!(
                "{x}.value LIKE {} ESCAPE '\\'",
                sql.bind(format!("{}%", like_escape(uri)))
            ),
            Modifier::Above => format!(
                "{} LIKE (REPLACE(REPLACE(REPLACE({x}.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%') ESCAPE '\\'",
                sql.bind(uri.clone())
            ),
            Modifier::Contains => format!(
                "{x}.value LIKE {} ESCAPE '\\'",
                sql.bind(format!("%{}%", like_escape(uri)))
            ),
            _ => format!("{x}.value = {}", sql.bind(uri.clone())),
        },
        SearchValue::Composite(_) => {
            return Err(invalid(
                "a composite value must be searched with a composite parameter".into(),
            ));
        }
    })
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn date_cond(
    low_col: &str,
    high_col: &str,
    prefix: Prefix,
    vl: i64,
    vh: i64,
    sql: &mut Sql,
) -> String {
    let widen = ((vh - vl) / 10).max(DAY_MS);
    let mut bind = |v: i64| sql.bind(v);
    match prefix {
        Prefix::Eq => format!("({low_col} >= {} AND {high_col} <= {})", bind(vl), bind(vh)),
        Prefix::Ne => format!(
            "NOT ({low_col} >= {} AND {high_col} <= {})",
            bind(vl),
            bind(vh)
        ),
        Prefix::Gt => format!("{high_col} > {}", bind(vh)),
        Prefix::Lt => format!("{low_col} < {}", bind(vl)),
        Prefix::Ge => format!("{high_col} >= {}", bind(vl)),
        Prefix::Le => format!("{low_col} <= {}", bind(vh)),
        Prefix::Sa => format!("{low_col} > {}", bind(vh)),
        Prefix::Eb => format!("{high_col} < {}", bind(vl)),
        Prefix::Ap => format!(
            "({low_col} <= {} AND {high_col} >= {})",
            bind(vh.saturating_add(widen)),
            bind(vl.saturating_sub(widen))
        ),
    }
}

fn number_cond(
    col: &str,
    prefix: Prefix,
    value: f64,
    low: f64,
    high: f64,
    sql: &mut Sql,
) -> String {
    let mut bind = |v: f64| sql.bind(v);
    match prefix {
        Prefix::Eq => format!("({col} >= {} AND {col} < {})", bind(low), bind(high)),
        Prefix::Ne => format!("NOT ({col} >= {} AND {col} < {})", bind(low), bind(high)),
        Prefix::Gt | Prefix::Sa => format!("{col} > {}", bind(value)),
        Prefix::Lt | Prefix::Eb => format!("{col} < {}", bind(value)),
        Prefix::Ge => format!("{col} >= {}", bind(value)),
        Prefix::Le => format!("{col} <= {}", bind(value)),
        Prefix::Ap => {
            let margin = (value * 0.1).abs();
            format!(
                "({col} >= {} AND {col} <= {})",
                bind(value - margin),
                bind(value + margin)
            )
        }
    }
}

/// Joins the component tables of a composite parameter (aliases `c0`, `c1`, ...) and returns
/// (FROM clause, condition): the OR over values of the AND over components.
fn composite_join(
    code: &str,
    values: &[SearchValue],
    sql: &mut Sql,
) -> Result<(String, String), SearchError> {
    let Some(SearchValue::Composite(first)) = values.first() else {
        return Err(invalid(format!(
            "{code} takes composite values (component$component)"
        )));
    };
    let mut from = Vec::new();
    for (i, component) in first.iter().enumerate() {
        let table = table_for_value(component)?;
        if i == 0 {
            from.push(format!("{table} c0"));
        } else {
            from.push(format!(
                "JOIN {table} c{i} ON c{i}.res_seq = c0.res_seq AND c{i}.grp = c0.grp"
            ));
        }
    }
    let mut ors = Vec::new();
    for value in values {
        let SearchValue::Composite(components) = value else {
            return Err(invalid(format!(
                "{code} takes composite values (component$component)"
            )));
        };
        if components.len() != first.len() {
            return Err(invalid(format!(
                "every value of {code} needs {} components",
                first.len()
            )));
        }
        let mut ands = Vec::new();
        for (i, component) in components.iter().enumerate() {
            if table_for_value(component)? != table_for_value(&first[i])? {
                return Err(invalid(format!(
                    "component {} of {code} changes type between values",
                    i + 1
                )));
            }
            ands.push(format!("c{i}.param = {}", sql.bind(format!("{code}${i}"))));
            ands.push(value_cond(
                &format!("c{i}"),
                component,
                &Modifier::None,
                sql,
            )?);
        }
        ors.push(format!("({})", ands.join(" AND ")));
    }
    Ok((from.join(" "), format!("({})", ors.join(" OR "))))
}

fn sort_expression(key: &Sort, sql: &mut Sql) -> Result<String, SearchError> {
    let direction = if key.descending { "DESC" } else { "ASC" };
    let expression = match &key.param {
        ParamRef::Id => "rv.id".to_string(),
        ParamRef::LastUpdated => "rv.last_updated".to_string(),
        ParamRef::Indexed { code, param_type } => {
            let table = table_for(*param_type)?;
            let aggregate = if key.descending { "MAX" } else { "MIN" };
            let column = match param_type {
                ParamType::String => "normalized",
                ParamType::Token => "code",
                ParamType::Date if key.descending => "high",
                ParamType::Date => "low",
                ParamType::Number | ParamType::Quantity => "value",
                ParamType::Reference => "COALESCE(target_id, url)",
                _ => "value",
            };
            let code = sql.bind(code.clone());
            format!(
                "(SELECT {aggregate}({column}) FROM {table} s WHERE s.res_seq = rv.seq AND s.param = {code})"
            )
        }
    };
    Ok(format!("{expression} {direction} NULLS LAST"))
}

/// Follows `_include` and `_revinclude` from the page's matches (and, with `:iterate`, from what
/// they add).
fn includes(
    conn: &Connection,
    query: &SearchQuery,
    matches: &[StoredVersion],
    vis: Vis,
) -> Result<Vec<StoredVersion>, SearchError> {
    if query.includes.is_empty() && query.revincludes.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().map(|m| m.seq).collect();
    let mut included: Vec<StoredVersion> = Vec::new();
    let mut frontier: Vec<StoredVersion> = matches.to_vec();
    for round in 0..MAX_ITERATIONS {
        let mut found = Vec::new();
        for include in &query.includes {
            if round == 0 || include.iterate {
                found.extend(forward(conn, include, &frontier, vis)?);
            }
        }
        for include in &query.revincludes {
            if round == 0 || include.iterate {
                found.extend(reverse(conn, include, &frontier, vis)?);
            }
        }
        frontier = found.into_iter().filter(|v| seen.insert(v.seq)).collect();
        if frontier.is_empty() {
            break;
        }
        included.extend(frontier.iter().cloned());
        if included.len() >= MAX_INCLUDED {
            included.truncate(MAX_INCLUDED);
            break;
        }
    }
    Ok(included)
}

fn forward(
    conn: &Connection,
    include: &Include,
    sources: &[StoredVersion],
    vis: Vis,
) -> Result<Vec<StoredVersion>, SearchError> {
    let seqs: Vec<String> = sources
        .iter()
        .filter(|s| include.source_type == "*" || s.resource_type == include.source_type)
        .map(|s| s.seq.to_string())
        .collect();
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut params: Vec<Value> = Vec::new();
    let mut filter = String::new();
    if let Some(code) = &include.param {
        params.push(code.clone().into());
        filter.push_str(&format!(" AND r.param = ?{}", params.len()));
    }
    if let Some(t) = &include.target_type {
        params.push(t.clone().into());
        filter.push_str(&format!(" AND r.target_type = ?{}", params.len()));
    }
    let text = format!(
        "SELECT DISTINCT {cols} FROM idx_reference r JOIN resource_version t
           ON t.resource_type = r.target_type AND t.id = r.target_id
         WHERE r.res_seq IN ({seqs}) AND r.grp IS NULL{filter} AND {vis}",
        cols = prefixed_columns("t"),
        seqs = seqs.join(","),
        vis = visible("t", vis),
    );
    let mut stmt = conn.prepare(&text)?;
    Ok(stmt
        .query_map(rusqlite::params_from_iter(params.iter()), row_to_version)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

fn reverse(
    conn: &Connection,
    include: &Include,
    targets: &[StoredVersion],
    vis: Vis,
) -> Result<Vec<StoredVersion>, SearchError> {
    let mut results = Vec::new();
    for chunk in targets.chunks(200) {
        let mut params: Vec<Value> = Vec::new();
        let mut keys = Vec::new();
        for target in chunk {
            if include
                .target_type
                .as_ref()
                .is_some_and(|t| *t != target.resource_type)
            {
                continue;
            }
            params.push(target.resource_type.clone().into());
            params.push(target.id.clone().into());
            keys.push(format!(
                "(r.target_type = ?{} AND r.target_id = ?{})",
                params.len() - 1,
                params.len()
            ));
        }
        if keys.is_empty() {
            continue;
        }
        let mut filter = String::new();
        if include.source_type != "*" {
            params.push(include.source_type.clone().into());
            filter.push_str(&format!(" AND r.resource_type = ?{}", params.len()));
        }
        if let Some(code) = &include.param {
            params.push(code.clone().into());
            filter.push_str(&format!(" AND r.param = ?{}", params.len()));
        }
        let text = format!(
            "SELECT DISTINCT {cols} FROM idx_reference r JOIN resource_version s ON s.seq = r.res_seq
             WHERE ({keys}){filter} AND r.grp IS NULL AND {vis}",
            cols = prefixed_columns("s"),
            keys = keys.join(" OR "),
            vis = visible("s", vis),
        );
        let mut stmt = conn.prepare(&text)?;
        results.extend(
            stmt.query_map(rusqlite::params_from_iter(params.iter()), row_to_version)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    Ok(results)
}
