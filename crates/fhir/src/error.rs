//! The closed error vocabulary shared by every Concord layer.
//!
//! Every failure a client can see is an [`Error`]: an [`ErrorKind`] plus the issues that explain it.
//! [`ErrorKind::http_status`] is the one place where a kind is mapped to an HTTP status, and
//! [`ErrorKind::issue_type`] the one place where it is mapped to a default OperationOutcome issue
//! code (<https://hl7.org/fhir/R4/valueset-issue-type.html>). Handlers never choose a status.

use std::fmt;

/// What went wrong, at the granularity a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed: bad JSON, bad parameter syntax, wrong content.
    Invalid,
    /// The request is well-formed but the resource breaks FHIR rules (structure, cardinality, formats).
    Unprocessable,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller is authenticated but not allowed.
    Forbidden,
    /// No such resource (or the caller may not know it exists).
    NotFound,
    /// The resource existed and was deleted.
    Gone,
    /// The HTTP method is not allowed on this URL.
    MethodNotAllowed,
    /// The server cannot produce the requested format.
    NotAcceptable,
    /// A conflicting write (for example an id mismatch, or a referenced resource is missing).
    Conflict,
    /// `If-Match` did not match the current version (a lost update was prevented).
    PreconditionFailed,
    /// A conditional operation matched more than one resource.
    MultipleMatches,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body's media type is not one we read.
    UnsupportedMediaType,
    /// A valid request for something this server does not implement.
    NotSupported,
    /// Too many requests from this caller.
    TooManyRequests,
    /// A dependency did not answer in time.
    Timeout,
    /// A dependency (store, source) is unavailable.
    Unavailable,
    /// A bug or an unexpected failure; the detail is logged, never returned.
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind. This is the only mapping from errors to statuses.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::Conflict => 409,
            ErrorKind::Gone => 410,
            ErrorKind::PreconditionFailed | ErrorKind::MultipleMatches => 412,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Unprocessable => 422,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Internal => 500,
            ErrorKind::NotSupported => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }

    /// The default OperationOutcome issue code for this kind.
    pub const fn issue_type(self) -> IssueType {
        match self {
            ErrorKind::Invalid => IssueType::Invalid,
            ErrorKind::Unprocessable => IssueType::Processing,
            ErrorKind::Unauthenticated => IssueType::Login,
            ErrorKind::Forbidden => IssueType::Forbidden,
            ErrorKind::NotFound => IssueType::NotFound,
            ErrorKind::Gone => IssueType::Deleted,
            ErrorKind::MethodNotAllowed | ErrorKind::NotSupported => IssueType::NotSupported,
            ErrorKind::NotAcceptable | ErrorKind::UnsupportedMediaType => IssueType::NotSupported,
            ErrorKind::Conflict | ErrorKind::PreconditionFailed => IssueType::Conflict,
            ErrorKind::MultipleMatches => IssueType::MultipleMatches,
            ErrorKind::PayloadTooLarge => IssueType::TooLong,
            ErrorKind::TooManyRequests => IssueType::Throttled,
            ErrorKind::Timeout => IssueType::Timeout,
            ErrorKind::Unavailable => IssueType::Transient,
            ErrorKind::Internal => IssueType::Exception,
        }
    }
}

/// OperationOutcome.issue.severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssueSeverity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl IssueSeverity {
    pub const fn code(self) -> &'static str {
        match self {
            IssueSeverity::Fatal => "fatal",
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Information => "information",
        }
    }
}

/// OperationOutcome.issue.code (the subset Concord emits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Conflict,
    Security,
    Login,
    Forbidden,
    Throttled,
    Timeout,
    Transient,
    Exception,
    Informational,
    Incomplete,
}

impl IssueType {
    pub const fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Conflict => "conflict",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Throttled => "throttled",
            IssueType::Timeout => "timeout",
            IssueType::Transient => "transient",
            IssueType::Exception => "exception",
            IssueType::Informational => "informational",
            IssueType::Incomplete => "incomplete",
        }
    }
}

/// One OperationOutcome issue: what is wrong and, where known, the FHIRPath of the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: IssueSeverity,
    pub code: IssueType,
    pub diagnostics: String,
    /// FHIRPath expressions of the offending elements, e.g. `Patient.birthDate`.
    pub expression: Vec<String>,
}

impl Issue {
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: IssueSeverity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: IssueSeverity::Warning,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    pub fn information(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity: IssueSeverity::Information,
            code,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    /// Names the element the issue is about.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression.push(expression.into());
        self
    }

    pub fn is_error(&self) -> bool {
        matches!(self.severity, IssueSeverity::Error | IssueSeverity::Fatal)
    }
}

/// An error a client sees: a kind plus at least one issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub issues: Vec<Issue>,
}

impl Error {
    /// An error with one issue whose code is the kind's default.
    pub fn new(kind: ErrorKind, diagnostics: impl Into<String>) -> Self {
        Error {
            kind,
            issues: vec![Issue::error(kind.issue_type(), diagnostics)],
        }
    }

    /// An error explained by the given issues (at least one should be an error).
    pub fn with_issues(kind: ErrorKind, issues: Vec<Issue>) -> Self {
        Error { kind, issues }
    }

    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, diagnostics)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, diagnostics)
    }

    pub fn not_supported(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotSupported, diagnostics)
    }

    pub fn conflict(diagnostics: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, diagnostics)
    }

    /// An internal failure. `detail` is for the log only; the client sees a generic message.
    pub fn internal() -> Self {
        Error::new(
            ErrorKind::Internal,
            "An internal error occurred; it has been logged with the request id.",
        )
    }

    /// Adds an expression to the first issue, for errors about one element.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        if let Some(first) = self.issues.first_mut() {
            first.expression.push(expression.into());
        }
        self
    }

    /// Prefixes every issue's diagnostics, e.g. with the Bundle entry it came from.
    pub fn in_context(mut self, context: &str) -> Self {
        for issue in &mut self.issues {
            issue.diagnostics = format!("{context}: {}", issue.diagnostics);
        }
        self
    }

    /// Places an error about a resource inside a Bundle entry: prefixes the diagnostics with the
    /// entry and re-roots each expression there (`Patient.birthDate` becomes
    /// `Bundle.entry[3].resource.birthDate`), so a client can find the element.
    pub fn in_entry(mut self, entry: &str) -> Self {
        for issue in &mut self.issues {
            for expression in &mut issue.expression {
                if !expression.starts_with("Bundle.") {
                    let rest = expression.split_once('.').map_or("", |(_, rest)| rest);
                    *expression = if rest.is_empty() {
                        format!("{entry}.resource")
                    } else {
                        format!("{entry}.resource.{rest}")
                    };
                }
            }
        }
        self.in_context(entry)
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)?;
        for issue in &self.issues {
            write!(f, "; {}", issue.diagnostics)?;
            if !issue.expression.is_empty() {
                write!(f, " (at {})", issue.expression.join(", "))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_client_or_server_status() {
        use ErrorKind::*;
        for kind in [
            Invalid,
            Unprocessable,
            Unauthenticated,
            Forbidden,
            NotFound,
            Gone,
            MethodNotAllowed,
            NotAcceptable,
            Conflict,
            PreconditionFailed,
            MultipleMatches,
            PayloadTooLarge,
            UnsupportedMediaType,
            NotSupported,
            TooManyRequests,
            Timeout,
            Unavailable,
            Internal,
        ] {
            let status = kind.http_status();
            assert!((400..600).contains(&status), "{kind:?} -> {status}");
            assert!(!kind.issue_type().code().is_empty());
        }
        assert_eq!(ErrorKind::PreconditionFailed.http_status(), 412);
        assert_eq!(ErrorKind::Unprocessable.http_status(), 422);
    }
}
