//! FHIR operations (<https://hl7.org/fhir/R4/operations.html>), type- and instance-level:
//! `Patient/[id]/$everything` (federated on a hub), `Patient/[id]/$summary` (the International
//! Patient Summary, federated on a hub), `Patient/$match`, `Patient/$ihe-pix` (IHE PIXm),
//! `Patient/$merge` and `Patient/$unmerge` (a source's record merge, as HL7 v2 A40),
//! `Person/$merge`, `Person/$unmerge`, `Person/[id]/$locate`, `Task/[id]/$resolve-match`, and
//! `Patient/[id]/$break-glass` (issue 6: a time-boxed grant with a reason, for a user without a
//! legitimate relationship) and `Patient/[id]/$access-log` (who looked at the record).
//! Each arm reads its inputs and calls one hub method; an unknown operation is 501.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use concord_fhir::{Error, RequestContext};
use concord_hub::identity::r#match::MatchRequest;
use concord_hub::identity::worklist::Resolution;
use concord_hub::identity::{param_reference, param_string};
use serde_json::Value;

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, fhir_response, parse_json, read_body};
use crate::{Shared, blocking};

/// `GET|POST [base]/[type]/[id]/$operation`.
pub(crate) async fn instance_operation(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    let hub = state.hub.clone();
    match (
        resource_type.as_str(),
        operation.as_str(),
        method == Method::POST,
    ) {
        ("Patient", "$everything", _) if hub.federation().is_some() => {
            let base = state.base(&headers);
            let hop = super::hop(&headers);
            let bundle = hub
                .federated_everything(&ctx, &hop, &id, &params, &base)
                .await?;
            super::bundle_response(&bundle)
        }
        ("Patient", "$summary", false) => {
            let base = state.base(&headers);
            let hop = super::hop(&headers);
            let document = hub
                .federated_summary(&ctx, &hop, &id, &params, &base)
                .await?;
            Ok(fhir_response(StatusCode::OK, document.to_vec(), Vec::new()))
        }
        ("Patient", "$everything", _) => {
            let base = state.base(&headers);
            let bundle =
                blocking(move || hub.patient_everything(&ctx, &id, &params, &base)).await?;
            super::bundle_response(&bundle)
        }
        ("Patient", "$break-glass", true) => {
            let input = parameters(&state, &headers, body).await?;
            let reason = param_string(&input, "reason")?.ok_or_else(|| {
                Error::invalid("reason is required: a break-glass reason code")
                    .at("Parameters.parameter[reason]")
            })?;
            let text = param_string(&input, "text")?.ok_or_else(|| {
                Error::invalid("text is required: say in your own words why you need this record")
                    .at("Parameters.parameter[text]")
            })?;
            let grant = blocking(move || hub.break_glass(&ctx, &id, &reason, &text)).await?;
            Ok(json_response(&break_glass_parameters(&grant)))
        }
        ("Patient", "$access-log", false) => {
            let limit = params
                .iter()
                .find(|(k, _)| k == "_count")
                .map(|(_, v)| {
                    v.parse::<usize>()
                        .map_err(|_| Error::invalid("_count must be a whole number").at("_count"))
                })
                .transpose()?
                .unwrap_or(100);
            let log = blocking(move || hub.access_log(&ctx, &id, limit)).await?;
            Ok(json_response(&log))
        }
        ("Person", "$locate", false) => {
            let parameters = blocking(move || hub.locate_parameters(&ctx, &id)).await?;
            Ok(json_response(&parameters))
        }
        ("Task", "$resolve-match", true) => {
            let input = parameters(&state, &headers, body).await?;
            let decision = param_string(&input, "decision")?
                .and_then(|d| Resolution::parse(&d))
                .ok_or_else(|| {
                    Error::invalid("decision must be 'link' or 'keep-apart'")
                        .at("Parameters.parameter")
                })?;
            let reason = param_string(&input, "reason")?;
            let task =
                blocking(move || hub.resolve_match(&ctx, &id, decision, reason.as_deref())).await?;
            Ok(stored_response(task.body))
        }
        (_, op, _) if op.starts_with('$') => Err(Error::not_supported(format!(
            "the operation {op} is not supported on {resource_type}/[id] with {method}"
        ))
        .into()),
        _ => Err(Error::not_found(format!(
            "there is nothing at {resource_type}/{id}/{operation}"
        ))
        .into()),
    }
}

/// `GET|POST [base]/[type]/$operation`.
pub(crate) async fn type_operation(
    state: Shared,
    ctx: RequestContext,
    (resource_type, operation): (String, String),
    method: Method,
    headers: HeaderMap,
    raw: Option<String>,
    body: Body,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    let hub = state.hub.clone();
    match (
        resource_type.as_str(),
        operation.as_str(),
        method == Method::POST,
    ) {
        ("Patient", "$match", true) => {
            let input = parameters(&state, &headers, body).await?;
            let request = MatchRequest::from_parameters(&input)?;
            let base = state.base(&headers);
            let bundle = blocking(move || hub.match_patient(&ctx, &request, &base)).await?;
            super::bundle_response(&bundle)
        }
        ("Patient", "$ihe-pix", false) => {
            let mut source = None;
            let mut targets = Vec::new();
            for (name, value) in params {
                match name.as_str() {
                    "sourceIdentifier" => source = Some(value),
                    "targetSystem" => targets.extend(value.split(',').map(str::to_string)),
                    "_format" => {}
                    other => {
                        return Err(
                            Error::invalid(format!("$ihe-pix has no parameter '{other}'")).into(),
                        );
                    }
                }
            }
            let source = source.ok_or_else(|| {
                Error::invalid("$ihe-pix needs sourceIdentifier=system|value")
                    .at("sourceIdentifier")
            })?;
            let parameters = blocking(move || hub.pix(&ctx, &source, &targets)).await?;
            Ok(json_response(&parameters))
        }
        ("Patient", "$merge" | "$unmerge", true) => {
            let input = parameters(&state, &headers, body).await?;
            let source = param_reference(&input, "source-patient", "Patient")?;
            let reason = param_string(&input, "reason")?;
            let patient = if operation == "$merge" {
                let target = param_reference(&input, "target-patient", "Patient")?;
                blocking(move || hub.merge_patients(&ctx, &source, &target, reason.as_deref()))
                    .await?
            } else {
                blocking(move || hub.unmerge_patient(&ctx, &source, reason.as_deref())).await?
            };
            Ok(stored_response(patient.body))
        }
        ("Person", "$merge" | "$unmerge", true) => {
            let input = parameters(&state, &headers, body).await?;
            let source = param_reference(&input, "source-person", "Person")?;
            let reason = param_string(&input, "reason")?;
            let person = if operation == "$merge" {
                let target = param_reference(&input, "target-person", "Person")?;
                blocking(move || hub.merge_persons(&ctx, &source, &target, reason.as_deref()))
                    .await?
            } else {
                blocking(move || hub.unmerge_person(&ctx, &source, reason.as_deref())).await?
            };
            Ok(stored_response(person.body))
        }
        (_, op, _) => Err(Error::not_supported(format!(
            "the operation {op} is not supported on {resource_type} with {method}"
        ))
        .into()),
    }
}

/// `POST [base]/[type]/$operation`, routed here because it shares its path shape with
/// `[type]/[id]`.
pub(crate) async fn type_operation_post(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, operation)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    if !operation.starts_with('$') {
        let mut response = crate::error::ApiError(Error::new(
            concord_fhir::ErrorKind::MethodNotAllowed,
            format!("POST is not allowed on {resource_type}/{operation}; use PUT to update"),
        ))
        .into_response();
        response.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("GET,HEAD,PUT,PATCH,DELETE"),
        );
        return Ok(response);
    }
    type_operation(
        state,
        ctx,
        (resource_type, operation),
        Method::POST,
        headers,
        raw,
        body,
    )
    .await
}

/// What a break-glass grant says back: its reason, and when it ends.
fn break_glass_parameters(grant: &concord_access::BreakGlass) -> Value {
    let expires = concord_fhir::primitive::format_instant(grant.expires_ms);
    serde_json::json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "reason", "valueCode": grant.reason.code()},
            {"name": "expires", "valueInstant": expires},
        ]
    })
}

async fn parameters(state: &crate::AppState, headers: &HeaderMap, body: Body) -> ApiResult<Value> {
    let bytes = read_body(headers, body, state.max_body_bytes, BodyKind::Resource).await?;
    Ok(parse_json(&bytes)?)
}

fn json_response(value: &Value) -> Response {
    fhir_response(StatusCode::OK, value.to_string(), Vec::new())
}

fn stored_response(body: Option<String>) -> Response {
    fhir_response(StatusCode::OK, body.unwrap_or_default(), Vec::new())
}
