//! Conversions between the [`Client`](ketch_core::Client) vocabulary and the
//! wire messages: objects, parameters, events, and [`ApiError`] <->
//! [`tonic::Status`].

use std::sync::Arc;

use bytes::Bytes;
use ketch_core::{
    ApiError, ArcObject, DeleteParams, DynamicObject, ListParams, Object, ObjectEvent,
    ResourceVersionMatch, Scheme, WatchParams,
};
use prost::Message;
use tonic::{Code, Status};

use super::proto;

/// Encodes an object for the wire.
pub(crate) fn encode_object(obj: &dyn Object) -> Result<proto::RawObject, ApiError> {
    let json = obj.to_json().map_err(|e| {
        ApiError::Internal(format!(
            "encoding {} {:?}: {e}",
            obj.kind(),
            obj.metadata().name()
        ))
    })?;
    Ok(proto::RawObject {
        api_version: obj.api_version().to_string(),
        kind: obj.kind().to_string(),
        json: Bytes::from(json),
    })
}

/// Decodes an object the server sent: with its registered type when the
/// scheme knows the kind, otherwise as a [`DynamicObject`] (a client need not
/// know every kind its server serves).
pub(crate) fn decode_object(
    scheme: &Scheme,
    raw: proto::RawObject,
    max_bytes: usize,
) -> Result<ArcObject, ApiError> {
    if raw.json.len() > max_bytes {
        return Err(ApiError::TooLarge(format!(
            "{} object of {} bytes exceeds the limit of {max_bytes} bytes",
            raw.kind,
            raw.json.len()
        )));
    }
    if raw.kind.is_empty() || raw.api_version.is_empty() {
        return Err(ApiError::BadRequest(
            "object: apiVersion and kind are required".into(),
        ));
    }
    let decoding =
        |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("decoding {}: {e}", raw.kind));
    if let Some(info) = scheme.by_kind(&raw.api_version, &raw.kind) {
        return info.decode_shared(&raw.json).map_err(|e| decoding(&e));
    }
    let obj: DynamicObject = serde_json::from_slice(&raw.json).map_err(|e| decoding(&e))?;
    if obj.api_version != raw.api_version || obj.kind != raw.kind {
        return Err(ApiError::BadRequest(format!(
            "object is {}/{} but was sent as {}/{}",
            obj.api_version, obj.kind, raw.api_version, raw.kind
        )));
    }
    Ok(Arc::new(obj))
}

/// The object of a message, or a clear error when it is missing.
pub(crate) fn required(object: Option<proto::RawObject>) -> Result<proto::RawObject, ApiError> {
    object.ok_or_else(|| ApiError::BadRequest("object: required field is missing".into()))
}

pub(crate) fn list_request(
    resource: &str,
    namespace: Option<&str>,
    p: &ListParams,
) -> proto::ListRequest {
    proto::ListRequest {
        resource: resource.to_string(),
        namespace: namespace.map(str::to_string),
        label_selector: p.label_selector.clone(),
        field_selector: p.field_selector.clone(),
        limit: p.limit,
        continue_token: p.continue_token.clone(),
        resource_version: p.resource_version.clone(),
        resource_version_match: match p.resource_version_match {
            None => proto::resource_version_match::UNSET,
            Some(ResourceVersionMatch::NotOlderThan) => {
                proto::resource_version_match::NOT_OLDER_THAN
            }
            Some(ResourceVersionMatch::Exact) => proto::resource_version_match::EXACT,
        },
    }
}

pub(crate) fn list_params(r: proto::ListRequest) -> Result<ListParams, ApiError> {
    Ok(ListParams {
        label_selector: r.label_selector,
        field_selector: r.field_selector,
        limit: r.limit,
        continue_token: r.continue_token,
        resource_version: r.resource_version,
        resource_version_match: match r.resource_version_match {
            proto::resource_version_match::UNSET => None,
            proto::resource_version_match::NOT_OLDER_THAN => {
                Some(ResourceVersionMatch::NotOlderThan)
            }
            proto::resource_version_match::EXACT => Some(ResourceVersionMatch::Exact),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch: unknown value {other}"
                )));
            }
        },
    })
}

pub(crate) fn watch_request(
    resource: &str,
    namespace: Option<&str>,
    p: &WatchParams,
) -> proto::WatchRequest {
    proto::WatchRequest {
        resource: resource.to_string(),
        namespace: namespace.map(str::to_string),
        label_selector: p.label_selector.clone(),
        field_selector: p.field_selector.clone(),
        resource_version: p.resource_version.clone(),
        bookmarks: p.bookmarks,
    }
}

pub(crate) fn watch_params(r: &proto::WatchRequest) -> WatchParams {
    WatchParams {
        label_selector: r.label_selector.clone(),
        field_selector: r.field_selector.clone(),
        resource_version: r.resource_version.clone(),
        bookmarks: r.bookmarks,
    }
}

pub(crate) fn delete_request(
    resource: &str,
    namespace: Option<&str>,
    name: &str,
    p: &DeleteParams,
) -> proto::DeleteRequest {
    proto::DeleteRequest {
        resource: resource.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        grace_period_seconds: p.grace_period_seconds,
        precondition_uid: p.precondition_uid.clone(),
        precondition_resource_version: p.precondition_resource_version.clone(),
    }
}

pub(crate) fn delete_params(r: &proto::DeleteRequest) -> DeleteParams {
    DeleteParams {
        grace_period_seconds: r.grace_period_seconds,
        precondition_uid: r.precondition_uid.clone(),
        precondition_resource_version: r.precondition_resource_version.clone(),
    }
}

pub(crate) fn encode_event(event: &ObjectEvent) -> Result<proto::WatchEvent, ApiError> {
    let (r#type, obj) = match event {
        ObjectEvent::Added(o) => (proto::event_type::ADDED, o),
        ObjectEvent::Modified(o) => (proto::event_type::MODIFIED, o),
        ObjectEvent::Deleted(o) => (proto::event_type::DELETED, o),
        ObjectEvent::Bookmark { resource_version } => {
            return Ok(proto::WatchEvent {
                r#type: proto::event_type::BOOKMARK,
                object: None,
                resource_version: resource_version.clone(),
            });
        }
    };
    Ok(proto::WatchEvent {
        r#type,
        resource_version: obj.metadata().resource_version.clone().unwrap_or_default(),
        object: Some(encode_object(obj.as_ref())?),
    })
}

pub(crate) fn decode_event(
    scheme: &Scheme,
    event: proto::WatchEvent,
    max_bytes: usize,
) -> Result<ObjectEvent, ApiError> {
    if event.r#type == proto::event_type::BOOKMARK {
        return Ok(ObjectEvent::Bookmark {
            resource_version: event.resource_version,
        });
    }
    let obj = decode_object(scheme, required(event.object)?, max_bytes)?;
    match event.r#type {
        proto::event_type::ADDED => Ok(ObjectEvent::Added(obj)),
        proto::event_type::MODIFIED => Ok(ObjectEvent::Modified(obj)),
        proto::event_type::DELETED => Ok(ObjectEvent::Deleted(obj)),
        other => Err(ApiError::Internal(format!(
            "unknown watch event type {other}"
        ))),
    }
}

fn parts(err: &ApiError) -> (Code, &'static str, &str, &str, &str) {
    match err {
        ApiError::BadRequest(m) => (Code::InvalidArgument, "BadRequest", m, "", ""),
        ApiError::Unauthorized(m) => (Code::Unauthenticated, "Unauthorized", m, "", ""),
        ApiError::Forbidden(m) => (Code::PermissionDenied, "Forbidden", m, "", ""),
        ApiError::NotFound { resource, name } => (Code::NotFound, "NotFound", "", resource, name),
        ApiError::AlreadyExists { resource, name } => {
            (Code::AlreadyExists, "AlreadyExists", "", resource, name)
        }
        ApiError::Conflict(m) => (Code::Aborted, "Conflict", m, "", ""),
        ApiError::Expired(m) => (Code::OutOfRange, "Expired", m, "", ""),
        ApiError::TooLarge(m) => (Code::ResourceExhausted, "TooLarge", m, "", ""),
        ApiError::Invalid(m) => (Code::InvalidArgument, "Invalid", m, "", ""),
        ApiError::Internal(m) => (Code::Internal, "Internal", m, "", ""),
        ApiError::Unavailable(m) => (Code::Unavailable, "Unavailable", m, "", ""),
        ApiError::Timeout(m) => (Code::DeadlineExceeded, "Timeout", m, "", ""),
    }
}

/// The gRPC status of an API error: a matching code, the error's text as
/// message, and the exact error in the details.
pub fn status_from_error(err: &ApiError) -> Status {
    let (code, reason, message, resource, name) = parts(err);
    let details = proto::ErrorDetails {
        reason: reason.to_string(),
        message: message.to_string(),
        resource: resource.to_string(),
        name: name.to_string(),
    };
    Status::with_details(code, err.to_string(), Bytes::from(details.encode_to_vec()))
}

/// The API error of a gRPC status: exact when the status came from a ketch
/// server (its details), otherwise derived from the code.
pub fn error_from_status(status: &Status) -> ApiError {
    if let Some(err) = exact_error(status) {
        return err;
    }
    let msg = status.message().to_string();
    match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition => ApiError::BadRequest(msg),
        Code::Unauthenticated => ApiError::Unauthorized(msg),
        Code::PermissionDenied => ApiError::Forbidden(msg),
        Code::NotFound => ApiError::NotFound {
            resource: String::new(),
            name: msg,
        },
        Code::AlreadyExists => ApiError::AlreadyExists {
            resource: String::new(),
            name: msg,
        },
        Code::Aborted => ApiError::Conflict(msg),
        // Without ketch details these come from the transport itself, which
        // reports oversized messages with either code.
        Code::OutOfRange | Code::ResourceExhausted => ApiError::TooLarge(msg),
        Code::DeadlineExceeded => ApiError::Timeout(msg),
        // A ketch server always sends details, so a bare Internal is the
        // transport failing (e.g. an HTTP/2 protocol error against a TLS port).
        Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Internal => {
            ApiError::Unavailable(msg)
        }
        Code::Ok | Code::Unimplemented | Code::DataLoss => {
            ApiError::Internal(format!("{:?}: {msg}", status.code()))
        }
    }
}

/// The error a ketch server put in the status details, if any.
pub(crate) fn exact_error(status: &Status) -> Option<ApiError> {
    if status.details().is_empty() {
        return None;
    }
    let d = proto::ErrorDetails::decode(status.details()).ok()?;
    let m = d.message;
    Some(match d.reason.as_str() {
        "BadRequest" => ApiError::BadRequest(m),
        "Unauthorized" => ApiError::Unauthorized(m),
        "Forbidden" => ApiError::Forbidden(m),
        "NotFound" => ApiError::NotFound {
            resource: d.resource,
            name: d.name,
        },
        "AlreadyExists" => ApiError::AlreadyExists {
            resource: d.resource,
            name: d.name,
        },
        "Conflict" => ApiError::Conflict(m),
        "Expired" => ApiError::Expired(m),
        "TooLarge" => ApiError::TooLarge(m),
        "Invalid" => ApiError::Invalid(m),
        "Internal" => ApiError::Internal(m),
        "Unavailable" => ApiError::Unavailable(m),
        "Timeout" => ApiError::Timeout(m),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ketch_core::ObjectMeta;
    use ketch_core::api::Pod;

    #[test]
    fn every_api_error_round_trips_through_a_status() {
        let errors = vec![
            ApiError::BadRequest("b".into()),
            ApiError::Unauthorized("u".into()),
            ApiError::Forbidden("f".into()),
            ApiError::NotFound {
                resource: "pods".into(),
                name: "web".into(),
            },
            ApiError::AlreadyExists {
                resource: "nodes".into(),
                name: "n1".into(),
            },
            ApiError::Conflict("c".into()),
            ApiError::Expired("e".into()),
            ApiError::TooLarge("t".into()),
            ApiError::Invalid("spec.x: bad".into()),
            ApiError::Internal("i".into()),
            ApiError::Unavailable("un".into()),
            ApiError::Timeout("to".into()),
        ];
        for err in errors {
            let status = status_from_error(&err);
            assert_eq!(status.message(), err.to_string());
            assert_eq!(error_from_status(&status), err);
        }
    }

    #[test]
    fn foreign_statuses_map_by_code() {
        let cases = [
            (Code::Unavailable, ApiError::Unavailable("m".into())),
            (Code::DeadlineExceeded, ApiError::Timeout("m".into())),
            (Code::ResourceExhausted, ApiError::TooLarge("m".into())),
            (Code::Unauthenticated, ApiError::Unauthorized("m".into())),
            (Code::OutOfRange, ApiError::TooLarge("m".into())),
            // A plaintext client against a TLS port gets a bare h2 protocol error.
            (Code::Internal, ApiError::Unavailable("m".into())),
        ];
        for (code, want) in cases {
            assert_eq!(error_from_status(&Status::new(code, "m")), want);
        }
        let garbage = Status::with_details(Code::Aborted, "m", Bytes::from_static(b"\xff\xff"));
        assert_eq!(error_from_status(&garbage), ApiError::Conflict("m".into()));
    }

    #[test]
    fn objects_decode_typed_or_dynamic_and_reject_garbage() {
        let scheme = Scheme::with_builtins();
        let pod = Pod {
            metadata: ObjectMeta::named("default", "web"),
            ..Pod::default()
        };
        let raw = encode_object(&pod).unwrap();
        let back = decode_object(&scheme, raw.clone(), 1 << 20).unwrap();
        assert!(back.eq_object(&pod));

        let mut garbage = raw.clone();
        garbage.json = Bytes::from_static(b"{\"metadata\": 7");
        let err = decode_object(&scheme, garbage, 1 << 20).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");

        let err = decode_object(&scheme, raw.clone(), 10).unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");

        let custom = proto::RawObject {
            api_version: "example.com/v1".into(),
            kind: "Job".into(),
            json: Bytes::from_static(
                br#"{"apiVersion":"example.com/v1","kind":"Job","metadata":{"name":"j"}}"#,
            ),
        };
        let dynamic = decode_object(&scheme, custom.clone(), 1 << 20).unwrap();
        assert_eq!(dynamic.kind(), "Job");

        let mut mislabelled = custom.clone();
        mislabelled.kind = "CronJob".into();
        let err = decode_object(&scheme, mislabelled, 1 << 20).unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest(ref m) if m.contains("sent as")),
            "{err:?}"
        );

        let mut untyped = custom;
        untyped.kind = String::new();
        let err = decode_object(&scheme, untyped, 1 << 20).unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest(ref m) if m.contains("kind are required")),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_enum_values_are_rejected() {
        let req = proto::ListRequest {
            resource_version_match: 9,
            ..proto::ListRequest::default()
        };
        assert!(matches!(list_params(req), Err(ApiError::BadRequest(_))));
        let ev = proto::WatchEvent {
            r#type: 42,
            object: Some(encode_object(&Pod::default()).unwrap()),
            resource_version: String::new(),
        };
        assert!(matches!(
            decode_event(&Scheme::with_builtins(), ev, 1 << 20),
            Err(ApiError::Internal(_))
        ));
    }
}
