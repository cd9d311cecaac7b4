//! The FHIRPath subset used by the R4 SearchParameter expressions (<https://hl7.org/fhirpath/>).
//!
//! Owns: parsing those expressions once ([`parse`], cached per registry expression by
//! [`compiled`]) and evaluating them over resource JSON into [`Node`]s, each tagged with its FHIR
//! type when the JSON tells it (a choice element's suffix, as in `valuePeriod`, or `as Type`).
//!
//! Supported: paths, choice elements (`Observation.value` finds `valueQuantity`), `|`, `where`,
//! `exists`, `first`, `[n]`, `as`/`is`/`ofType` (operator and function forms), `resolve()` (to the
//! type named by the reference string, which is all `resolve() is Type` needs), `extension(url)`,
//! `hasExtension(url)`, `=`, `!=`, `and`, `or`, `not()`, string, boolean and integer literals and
//! `%resource`. Does not: implement the rest of FHIRPath (arithmetic, date maths, most functions),
//! resolve references against a store, or know element types from the StructureDefinitions.

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    root: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// The evaluation context (`$this`).
    This,
    /// `%resource`.
    Resource,
    /// A leading type name such as `Patient` or `Resource`: the context if it is of that type.
    TypeRoot(String),
    /// `.name` on each item of the inner collection.
    Member(Box<Expr>, String),
    Call(Box<Expr>, Function),
    Index(Box<Expr>, usize),
    Union(Box<Expr>, Box<Expr>),
    As(Box<Expr>, String),
    Is(Box<Expr>, String),
    Equals {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Str(String),
    Bool(bool),
    Integer(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Function {
    Where(Box<Expr>),
    Exists(Option<Box<Expr>>),
    First,
    Not,
    Empty,
    Resolve,
    Extension(String),
    HasExtension(String),
    OfType(String),
    As(String),
    Is(String),
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset in the expression.
    pub position: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

/// Why an evaluation failed (FHIRPath type errors such as comparing a collection of several items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

/// One item of an evaluation result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node<'a> {
    /// A JSON element, with its FHIR type when known (`Quantity`, `dateTime`, `Patient`, ...).
    Element {
        value: &'a Value,
        fhir_type: Option<&'a str>,
    },
    /// A string literal.
    String(&'a str),
    /// A boolean literal or the result of `exists()`, `=`, `and`...
    Boolean(bool),
    Integer(i64),
    /// What `resolve()` yields: the type of the referenced resource, as its reference says.
    Resolved {
        resource_type: &'a str,
    },
}

impl<'a> Node<'a> {
    /// A JSON element of unknown type.
    pub fn element(value: &'a Value) -> Self {
        Node::Element {
            value,
            fhir_type: None,
        }
    }

    /// The JSON value, for elements.
    pub fn value(&self) -> Option<&'a Value> {
        match self {
            Node::Element { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The FHIR type, when known.
    pub fn fhir_type(&self) -> Option<&'a str> {
        match self {
            Node::Element { value, fhir_type } => {
                fhir_type.or_else(|| value.get("resourceType").and_then(Value::as_str))
            }
            Node::String(_) => Some("string"),
            Node::Boolean(_) => Some("boolean"),
            Node::Integer(_) => Some("integer"),
            Node::Resolved { resource_type } => Some(resource_type),
        }
    }
}

/// The FHIR primitive type names, which choice suffixes spell with an upper-case first letter.
const PRIMITIVES: &[&str] = &[
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
];

/// The complex types a choice element (`[x]`) may take in R4.
const CHOICE_COMPLEX: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactDetail",
    "ContactPoint",
    "Contributor",
    "Count",
    "DataRequirement",
    "Distance",
    "Dosage",
    "Duration",
    "Expression",
    "HumanName",
    "Identifier",
    "Meta",
    "Money",
    "ParameterDefinition",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "RelatedArtifact",
    "SampledData",
    "Signature",
    "Timing",
    "TriggerDefinition",
    "UsageContext",
];

/// The FHIR type a choice suffix names (`Quantity` → `Quantity`, `DateTime` → `dateTime`).
pub(crate) fn choice_type(suffix: &str) -> Option<&'static str> {
    if let Some(t) = CHOICE_COMPLEX.iter().find(|t| **t == suffix) {
        return Some(t);
    }
    let mut chars = suffix.chars();
    let first = chars.next()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    PRIMITIVES.iter().copied().find(|p| {
        p.len() == suffix.len()
            && p[1..] == suffix[1..]
            && p.starts_with(first.to_ascii_lowercase())
    })
}

/// True when type names are the same, ignoring the case of the first letter and a namespace
/// (`FHIR.string`, `System.String`), because the R4 expressions mix `DateTime` and `dateTime`.
fn same_type(a: &str, b: &str) -> bool {
    let strip = |s: &str| -> String {
        let s = s
            .strip_prefix("FHIR.")
            .or_else(|| s.strip_prefix("System."))
            .unwrap_or(s);
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    strip(a) == strip(b)
}

// ---------------------------------------------------------------------------------------------
// Parsing.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Var(String),
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    let err = |message: &str, position: usize| ParseError {
        message: message.to_string(),
        position,
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(ch) = src[i..].chars().next() else {
                        return Err(err("unterminated string literal", start));
                    };
                    i += ch.len_utf8();
                    match ch {
                        '\'' => break,
                        '\\' => {
                            let Some(esc) = src[i..].chars().next() else {
                                return Err(err("unterminated escape", i));
                            };
                            i += esc.len_utf8();
                            s.push(match esc {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        other => s.push(other),
                    }
                }
                out.push((Token::Str(s), start));
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = src[start..i]
                    .parse()
                    .map_err(|_| err("integer literal too large", start))?;
                out.push((Token::Int(n), start));
            }
            b'%' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Token::Var(src[start + 1..i].to_string()), start));
            }
            b'`' => {
                let end = src[i + 1..]
                    .find('`')
                    .ok_or_else(|| err("unterminated delimited identifier", start))?;
                out.push((Token::Ident(src[i + 1..i + 1 + end].to_string()), start));
                i += end + 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Token::Ident(src[start..i].to_string()), start));
            }
            _ => {
                let two = src.get(i..i + 2);
                let sym = match (two, c) {
                    (Some("!="), _) => "!=",
                    (_, b'.') => ".",
                    (_, b'(') => "(",
                    (_, b')') => ")",
                    (_, b'[') => "[",
                    (_, b']') => "]",
                    (_, b'|') => "|",
                    (_, b'=') => "=",
                    (_, b',') => ",",
                    _ => return Err(err("unexpected character", start)),
                };
                i += sym.len();
                out.push((Token::Sym(sym), start));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len, |(_, o)| *o)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.into(),
            position: self.offset(),
        })
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(s)) if s == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), ParseError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            self.error(format!("expected '{sym}'"))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.error("expected an identifier"),
        }
    }

    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut name = self.ident()?;
        // Qualified names (`FHIR.Patient`, `System.String`) keep only the type.
        if matches!(name.as_str(), "FHIR" | "System") && self.eat_sym(".") {
            name = self.ident()?;
        }
        Ok(name)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.equality()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.equality()?));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.union()?;
        loop {
            let negated = if self.eat_sym("=") {
                false
            } else if self.eat_sym("!=") {
                true
            } else {
                return Ok(left);
            };
            left = Expr::Equals {
                left: Box::new(left),
                right: Box::new(self.union()?),
                negated,
            };
        }
    }

    fn union(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.type_op()?;
        while self.eat_sym("|") {
            left = Expr::Union(Box::new(left), Box::new(self.type_op()?));
        }
        Ok(left)
    }

    fn type_op(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.postfix()?;
        loop {
            if self.eat_keyword("as") {
                left = Expr::As(Box::new(left), self.type_name()?);
            } else if self.eat_keyword("is") {
                left = Expr::Is(Box::new(left), self.type_name()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.term()?;
        loop {
            if self.eat_sym(".") {
                let name = self.ident()?;
                expr = if self.eat_sym("(") {
                    Expr::Call(Box::new(expr), self.function(&name)?)
                } else {
                    Expr::Member(Box::new(expr), name)
                };
            } else if self.eat_sym("[") {
                let index = match self.peek() {
                    Some(Token::Int(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
                    _ => return self.error("expected an integer index"),
                };
                self.pos += 1;
                self.expect_sym("]")?;
                expr = Expr::Index(Box::new(expr), index);
            } else {
                return Ok(expr);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.peek().cloned() else {
            return self.error("unexpected end of expression");
        };
        self.pos += 1;
        match token {
            Token::Sym("(") => {
                let inner = self.or()?;
                self.expect_sym(")")?;
                Ok(inner)
            }
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Int(n) => Ok(Expr::Integer(n)),
            Token::Var(v) if matches!(v.as_str(), "resource" | "rootResource" | "context") => {
                Ok(Expr::Resource)
            }
            Token::Var(v) => {
                self.pos -= 1;
                self.error(format!("unknown variable %{v}"))
            }
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "$this" => Ok(Expr::This),
                _ if self.eat_sym("(") => {
                    Ok(Expr::Call(Box::new(Expr::This), self.function(&name)?))
                }
                _ if name.starts_with(|c: char| c.is_ascii_uppercase()) => Ok(Expr::TypeRoot(name)),
                _ => Ok(Expr::Member(Box::new(Expr::This), name)),
            },
            Token::Sym(_) => {
                self.pos -= 1;
                self.error("unexpected symbol")
            }
        }
    }

    /// Parses a function's arguments (after its opening paren) and the closing paren.
    fn function(&mut self, name: &str) -> Result<Function, ParseError> {
        let f = match name {
            "where" => Function::Where(Box::new(self.or()?)),
            "exists" => {
                if matches!(self.peek(), Some(Token::Sym(")"))) {
                    Function::Exists(None)
                } else {
                    Function::Exists(Some(Box::new(self.or()?)))
                }
            }
            "first" => Function::First,
            "not" => Function::Not,
            "empty" => Function::Empty,
            "resolve" => Function::Resolve,
            "extension" | "hasExtension" => {
                let url = match self.peek() {
                    Some(Token::Str(s)) => s.clone(),
                    _ => return self.error(format!("{name}() takes a string literal")),
                };
                self.pos += 1;
                if name == "extension" {
                    Function::Extension(url)
                } else {
                    Function::HasExtension(url)
                }
            }
            "ofType" => Function::OfType(self.type_name()?),
            "as" => Function::As(self.type_name()?),
            "is" => Function::Is(self.type_name()?),
            other => return self.error(format!("unsupported function {other}()")),
        };
        self.expect_sym(")")?;
        Ok(f)
    }
}

/// Parses an expression of the supported subset.
pub fn parse(src: &str) -> Result<Expression, ParseError> {
    let tokens = tokenize(src)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        len: src.len(),
    };
    let root = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return parser.error("unexpected token after the end of the expression");
    }
    Ok(Expression { root })
}

static CACHE: LazyLock<HashMap<&'static str, Expression>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for def in crate::registry::all() {
        let exprs = def
            .expression
            .into_iter()
            .chain(def.components.iter().map(|c| c.expression));
        for src in exprs {
            if !map.contains_key(src)
                && let Ok(e) = parse(src)
            {
                map.insert(src, e);
            }
        }
    }
    map
});

/// The parsed form of a registry expression (a SearchParameter's or a component's), parsed once.
/// `None` for an expression that is not in the registry or that the subset cannot parse.
pub fn compiled(expression: &str) -> Option<&'static Expression> {
    CACHE.get(expression)
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

struct Env<'a> {
    resource: &'a Value,
}

impl Expression {
    /// Evaluates with the resource as both context and `%resource`.
    pub fn evaluate<'a>(&'a self, resource: &'a Value) -> Result<Vec<Node<'a>>, EvalError> {
        let env = Env { resource };
        let this = Node::Element {
            value: resource,
            fhir_type: resource.get("resourceType").and_then(Value::as_str),
        };
        eval(&self.root, &[this], &env)
    }

    /// Evaluates relative to `context` (a composite's item), with `resource` as `%resource`.
    pub fn evaluate_on<'a>(
        &'a self,
        resource: &'a Value,
        context: Node<'a>,
    ) -> Result<Vec<Node<'a>>, EvalError> {
        eval(&self.root, &[context], &Env { resource })
    }
}

fn push_value<'a>(out: &mut Vec<Node<'a>>, value: &'a Value, fhir_type: Option<&'a str>) {
    match value {
        Value::Array(items) => {
            for item in items {
                // Arrays of primitives hold `null` where only an extension is present.
                if !item.is_null() {
                    out.push(Node::Element {
                        value: item,
                        fhir_type,
                    });
                }
            }
        }
        Value::Null => {}
        other => out.push(Node::Element {
            value: other,
            fhir_type,
        }),
    }
}

fn member<'a>(out: &mut Vec<Node<'a>>, node: &Node<'a>, name: &str) {
    let Node::Element {
        value: Value::Object(map),
        ..
    } = node
    else {
        return;
    };
    if let Some(v) = map.get(name) {
        push_value(out, v, None);
        return;
    }
    // A choice element `name[x]` is stored as `name` + its type, e.g. `valueQuantity`.
    for (key, v) in map {
        if let Some(suffix) = key.strip_prefix(name)
            && let Some(t) = choice_type(suffix)
        {
            push_value(out, v, Some(t));
        }
    }
}

fn is_type(node: &Node<'_>, type_name: &str) -> bool {
    match node {
        Node::Element {
            value,
            fhir_type: Some(t),
        } => {
            same_type(t, type_name)
                || (matches!(type_name, "Resource" | "DomainResource")
                    && value.get("resourceType").is_some())
        }
        Node::Element {
            value,
            fhir_type: None,
        } => match value {
            Value::Object(map) => match map.get("resourceType").and_then(Value::as_str) {
                Some(rt) => rt == type_name || matches!(type_name, "Resource" | "DomainResource"),
                // An untyped object is taken to be of any complex type asked for: the JSON does
                // not say, and the R4 expressions only ask where the element's type allows it.
                None => {
                    type_name.starts_with(|c: char| c.is_ascii_uppercase())
                        && choice_type(type_name) != Some("string")
                }
            },
            Value::Bool(_) => same_type(type_name, "boolean"),
            Value::Number(_) => matches!(
                type_name,
                "decimal" | "integer" | "positiveInt" | "unsignedInt" | "Decimal" | "Integer"
            ),
            Value::String(_) => {
                PRIMITIVES.iter().any(|p| same_type(p, type_name))
                    && !same_type(type_name, "boolean")
            }
            _ => false,
        },
        other => other.fhir_type().is_some_and(|t| same_type(t, type_name)),
    }
}

fn as_type<'a>(nodes: Vec<Node<'a>>, type_name: &'a str) -> Vec<Node<'a>> {
    nodes
        .into_iter()
        .filter(|n| is_type(n, type_name))
        .map(|n| match n {
            // Tag the element so extraction knows, say, that an untagged object is a Quantity.
            Node::Element {
                value,
                fhir_type: None,
            } if value.get("resourceType").is_none() => Node::Element {
                value,
                fhir_type: Some(type_name),
            },
            other => other,
        })
        .collect()
}

fn resolve<'a>(node: &Node<'a>, env: &Env<'a>) -> Option<Node<'a>> {
    let value = node.value()?;
    let reference = match value {
        Value::Object(map) => map.get("reference")?.as_str()?,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    if let Some(local) = reference.strip_prefix('#') {
        let contained = env.resource.get("contained")?.as_array()?;
        let found = contained
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(local))?;
        return Some(Node::Resolved {
            resource_type: found.get("resourceType")?.as_str()?,
        });
    }
    use concord_fhir::reference::{Reference, parse};
    match parse(reference).ok()? {
        Reference::Relative { resource_type, .. } => Some(Node::Resolved { resource_type }),
        Reference::Absolute {
            resource_type: Some(resource_type),
            ..
        } => Some(Node::Resolved { resource_type }),
        _ => None,
    }
}

/// Singleton evaluation for boolean contexts: empty is `None`, one boolean is itself, one other
/// item counts as true (FHIRPath's singleton evaluation of collections).
fn truth(nodes: &[Node<'_>]) -> Result<Option<bool>, EvalError> {
    match nodes {
        [] => Ok(None),
        [Node::Boolean(b)] => Ok(Some(*b)),
        [
            Node::Element {
                value: Value::Bool(b),
                ..
            },
        ] => Ok(Some(*b)),
        [_] => Ok(Some(true)),
        _ => Err(EvalError(format!(
            "expected a single boolean, found {} items",
            nodes.len()
        ))),
    }
}

fn equal(a: &Node<'_>, b: &Node<'_>) -> bool {
    fn text<'x>(n: &Node<'x>) -> Option<&'x str> {
        match n {
            Node::String(s) => Some(s),
            Node::Element {
                value: Value::String(s),
                ..
            } => Some(s),
            _ => None,
        }
    }
    fn boolean(n: &Node<'_>) -> Option<bool> {
        match n {
            Node::Boolean(b)
            | Node::Element {
                value: Value::Bool(b),
                ..
            } => Some(*b),
            _ => None,
        }
    }
    fn number(n: &Node<'_>) -> Option<f64> {
        match n {
            Node::Integer(i) => Some(*i as f64),
            Node::Element {
                value: Value::Number(x),
                ..
            } => x.as_f64(),
            _ => None,
        }
    }
    if let (Some(x), Some(y)) = (text(a), text(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (boolean(a), boolean(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x == y;
    }
    match (a, b) {
        (Node::Element { value: x, .. }, Node::Element { value: y, .. }) => x == y,
        _ => false,
    }
}

fn eval<'a>(expr: &'a Expr, input: &[Node<'a>], env: &Env<'a>) -> Result<Vec<Node<'a>>, EvalError> {
    Ok(match expr {
        Expr::This => input.to_vec(),
        Expr::Resource => {
            vec![Node::Element {
                value: env.resource,
                fhir_type: env.resource.get("resourceType").and_then(Value::as_str),
            }]
        }
        Expr::TypeRoot(name) => {
            let typed: Vec<Node<'a>> = input
                .iter()
                .filter(|n| is_resource_of(n, name))
                .copied()
                .collect();
            if typed.is_empty() && !is_resource_name(name) {
                // Not a resource type: a member whose name starts with a capital (rare, but legal).
                let mut out = Vec::new();
                for n in input {
                    member(&mut out, n, name);
                }
                out
            } else {
                typed
            }
        }
        Expr::Member(inner, name) => {
            let base = eval(inner, input, env)?;
            let mut out = Vec::with_capacity(base.len());
            for n in &base {
                member(&mut out, n, name);
            }
            out
        }
        Expr::Index(inner, i) => eval(inner, input, env)?
            .get(*i)
            .copied()
            .into_iter()
            .collect(),
        Expr::Union(a, b) => {
            let mut out = eval(a, input, env)?;
            for n in eval(b, input, env)? {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            out
        }
        Expr::As(inner, t) => as_type(eval(inner, input, env)?, t),
        Expr::Is(inner, t) => match eval(inner, input, env)?.as_slice() {
            [] => Vec::new(),
            [n] => vec![Node::Boolean(is_type(n, t))],
            many => {
                return Err(EvalError(format!(
                    "'is {t}' needs a single item, found {}",
                    many.len()
                )));
            }
        },
        Expr::Equals {
            left,
            right,
            negated,
        } => {
            let l = eval(left, input, env)?;
            let r = eval(right, input, env)?;
            match (l.as_slice(), r.as_slice()) {
                ([], _) | (_, []) => Vec::new(),
                ([a], [b]) => vec![Node::Boolean(equal(a, b) != *negated)],
                _ => {
                    // Collections compare item by item, in order.
                    let same = l.len() == r.len() && l.iter().zip(&r).all(|(a, b)| equal(a, b));
                    vec![Node::Boolean(same != *negated)]
                }
            }
        }
        Expr::And(a, b) => {
            let x = truth(&eval(a, input, env)?)?;
            let y = truth(&eval(b, input, env)?)?;
            match (x, y) {
                (Some(false), _) | (_, Some(false)) => vec![Node::Boolean(false)],
                (Some(true), Some(true)) => vec![Node::Boolean(true)],
                _ => Vec::new(),
            }
        }
        Expr::Or(a, b) => {
            let x = truth(&eval(a, input, env)?)?;
            let y = truth(&eval(b, input, env)?)?;
            match (x, y) {
                (Some(true), _) | (_, Some(true)) => vec![Node::Boolean(true)],
                (Some(false), Some(false)) => vec![Node::Boolean(false)],
                _ => Vec::new(),
            }
        }
        Expr::Str(s) => vec![Node::String(s)],
        Expr::Bool(b) => vec![Node::Boolean(*b)],
        Expr::Integer(i) => vec![Node::Integer(*i)],
        Expr::Call(inner, f) => {
            let base = eval(inner, input, env)?;
            call(f, base, env)?
        }
    })
}

fn is_resource_name(name: &str) -> bool {
    matches!(name, "Resource" | "DomainResource") || concord_fhir::resource::is_resource_type(name)
}

fn is_resource_of(node: &Node<'_>, name: &str) -> bool {
    let Some(rt) = node
        .value()
        .and_then(|v| v.get("resourceType"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    rt == name
        || name == "Resource"
        || (name == "DomainResource" && !matches!(rt, "Bundle" | "Binary" | "Parameters"))
}

fn call<'a>(
    f: &'a Function,
    base: Vec<Node<'a>>,
    env: &Env<'a>,
) -> Result<Vec<Node<'a>>, EvalError> {
    Ok(match f {
        Function::Where(criteria) => {
            let mut out = Vec::new();
            for n in base {
                if truth(&eval(criteria, &[n], env)?)? == Some(true) {
                    out.push(n);
                }
            }
            out
        }
        Function::Exists(criteria) => {
            let any = match criteria {
                None => !base.is_empty(),
                Some(c) => {
                    let mut any = false;
                    for n in base {
                        if truth(&eval(c, &[n], env)?)? == Some(true) {
                            any = true;
                            break;
                        }
                    }
                    any
                }
            };
            vec![Node::Boolean(any)]
        }
        Function::Empty => vec![Node::Boolean(base.is_empty())],
        Function::Not => truth(&base)?
            .map(|b| Node::Boolean(!b))
            .into_iter()
            .collect(),
        Function::First => base.into_iter().take(1).collect(),
        Function::Resolve => base.iter().filter_map(|n| resolve(n, env)).collect(),
        Function::Extension(url) => {
            let mut out = Vec::new();
            for n in &base {
                let Some(Value::Array(exts)) = n.value().and_then(|v| v.get("extension")) else {
                    continue;
                };
                for e in exts {
                    if e.get("url").and_then(Value::as_str) == Some(url.as_str()) {
                        out.push(Node::Element {
                            value: e,
                            fhir_type: Some("Extension"),
                        });
                    }
                }
            }
            out
        }
        Function::HasExtension(url) => {
            let has = base.iter().any(|n| {
                n.value()
                    .and_then(|v| v.get("extension"))
                    .and_then(Value::as_array)
                    .is_some_and(|exts| {
                        exts.iter()
                            .any(|e| e.get("url").and_then(Value::as_str) == Some(url.as_str()))
                    })
            });
            vec![Node::Boolean(has)]
        }
        Function::OfType(t) | Function::As(t) => as_type(base, t),
        Function::Is(t) => match base.as_slice() {
            [] => Vec::new(),
            [n] => vec![Node::Boolean(is_type(n, t))],
            many => {
                return Err(EvalError(format!(
                    "is({t}) needs a single item, found {}",
                    many.len()
                )));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(expr: &str, resource: &Value) -> Vec<(String, Option<String>)> {
        let e = parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
        e.evaluate(resource)
            .unwrap()
            .iter()
            .map(|n| match n {
                Node::Element { value, fhir_type } => {
                    (value.to_string(), fhir_type.map(str::to_string))
                }
                other => (format!("{other:?}"), None),
            })
            .collect()
    }

    #[test]
    fn navigates_paths_and_choices() {
        let obs = json!({"resourceType": "Observation", "code": {"text": "x"},
            "valueQuantity": {"value": 1}, "effectivePeriod": {"start": "2020"},
            "component": [{"valueString": "a"}, {"valueQuantity": {"value": 2}}]});
        assert_eq!(
            values("Observation.code.text", &obs),
            [("\"x\"".to_string(), None)]
        );
        assert_eq!(
            values("Observation.value as Quantity", &obs)[0]
                .1
                .as_deref(),
            Some("Quantity")
        );
        assert!(values("(Observation.value as CodeableConcept)", &obs).is_empty());
        assert_eq!(
            values("Observation.effective", &obs)[0].1.as_deref(),
            Some("Period")
        );
        assert_eq!(
            values("Observation.component.value.as(Quantity)", &obs).len(),
            1
        );
        assert_eq!(
            values("Observation.component.value.as(string)", &obs)[0]
                .1
                .as_deref(),
            Some("string")
        );
        assert!(values("Patient.name", &obs).is_empty());
        assert_eq!(values("Resource.code", &obs).len(), 1);
        assert_eq!(values("Observation.component[1].value", &obs).len(), 1);
        assert_eq!(
            values("Observation.component.first().value", &obs)[0].0,
            "\"a\""
        );
        assert_eq!(values("Observation", &obs).len(), 1);
        assert_eq!(
            values(
                "(Observation.value as DateTime) | (Observation.effective as Period)",
                &obs
            )
            .len(),
            1
        );
    }

    #[test]
    fn filters_with_where_and_resolve() {
        let p = json!({"resourceType": "Patient", "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
            "generalPractitioner": [{"reference": "Practitioner/1"}, {"reference": "http://x.org/fhir/Organization/2"}, {"reference": "#c"}],
            "contained": [{"resourceType": "Organization", "id": "c"}], "deceasedBoolean": false});
        assert_eq!(values("Patient.telecom.where(system='email')", &p).len(), 1);
        assert_eq!(
            values(
                "Patient.generalPractitioner.where(resolve() is Practitioner)",
                &p
            )
            .len(),
            1
        );
        assert_eq!(
            values(
                "Patient.generalPractitioner.where(resolve() is Organization)",
                &p
            )
            .len(),
            2
        );
        assert_eq!(
            values(
                "Patient.deceased.exists() and Patient.deceased != false",
                &p
            ),
            [("Boolean(false)".to_string(), None)]
        );
        let dead = json!({"resourceType": "Patient", "deceasedDateTime": "2020"});
        assert_eq!(
            values(
                "Patient.deceased.exists() and Patient.deceased != false",
                &dead
            ),
            [("Boolean(true)".to_string(), None)]
        );
    }

    #[test]
    fn finds_extensions() {
        let p = json!({"resourceType": "Patient", "extension": [{"url": "u", "valueString": "m"}],
            "name": [{"extension": [{"url": "v"}], "family": "f"}, {"family": "g"}]});
        assert_eq!(
            values("Patient.extension('u')", &p)[0].1.as_deref(),
            Some("Extension")
        );
        assert_eq!(
            values("Patient.name.where(hasExtension('v')).family", &p)[0].0,
            "\"f\""
        );
        assert_eq!(values("%resource.name.family", &p).len(), 2);
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        for bad in [
            "", "a.", "a + b", "a.foo()", "(a", "'x", "a[b]", "%unknown", "a b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_registry_expression_parses() {
        let mut failures = Vec::new();
        for def in crate::registry::all() {
            let exprs = def
                .expression
                .into_iter()
                .chain(def.components.iter().map(|c| c.expression));
            for e in exprs {
                if let Err(err) = parse(e) {
                    failures.push(format!("{}.{}: {e}: {err}", def.base, def.code));
                }
                assert!(compiled(e).is_some() || parse(e).is_err());
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
