//! The wire messages of the `ketch.v1.Api` gRPC service, written by hand
//! with `prost` derives so that building needs no `protoc`. Objects travel as
//! their JSON encoding, tagged with `apiVersion` and `kind` so the receiver
//! can pick a decoder without parsing twice.
//!
//! The schema, in proto3 terms, is in `crates/apiserver/proto/ketch.proto`.

use bytes::Bytes;

/// Fully qualified name of the service.
pub const SERVICE: &str = "ketch.v1.Api";

/// Method paths, `/<service>/<method>`.
pub mod path {
    /// `Create`: [`ObjectRequest`](super::ObjectRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const CREATE: &str = "/ketch.v1.Api/Create";
    /// `Get`: [`GetRequest`](super::GetRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const GET: &str = "/ketch.v1.Api/Get";
    /// `List`: [`ListRequest`](super::ListRequest) -> [`ListResponse`](super::ListResponse).
    pub const LIST: &str = "/ketch.v1.Api/List";
    /// `Update`: [`ObjectRequest`](super::ObjectRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const UPDATE: &str = "/ketch.v1.Api/Update";
    /// `UpdateStatus`: [`ObjectRequest`](super::ObjectRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const UPDATE_STATUS: &str = "/ketch.v1.Api/UpdateStatus";
    /// `Patch`: [`PatchRequest`](super::PatchRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const PATCH: &str = "/ketch.v1.Api/Patch";
    /// `Delete`: [`DeleteRequest`](super::DeleteRequest) -> [`DeleteResponse`](super::DeleteResponse).
    pub const DELETE: &str = "/ketch.v1.Api/Delete";
    /// `Watch`: [`WatchRequest`](super::WatchRequest) -> stream of [`WatchEvent`](super::WatchEvent).
    pub const WATCH: &str = "/ketch.v1.Api/Watch";
    /// `Bind`: [`BindRequest`](super::BindRequest) -> [`ObjectResponse`](super::ObjectResponse).
    pub const BIND: &str = "/ketch.v1.Api/Bind";
}

/// An object as JSON, with its type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawObject {
    /// `apiVersion` of the object.
    #[prost(string, tag = "1")]
    pub api_version: String,
    /// `kind` of the object.
    #[prost(string, tag = "2")]
    pub kind: String,
    /// The whole object as JSON.
    #[prost(bytes = "bytes", tag = "3")]
    pub json: Bytes,
}

/// A request carrying one object (create, update, update status).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectRequest {
    /// The object.
    #[prost(message, optional, tag = "1")]
    pub object: Option<RawObject>,
}

/// A response carrying one object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectResponse {
    /// The object as stored.
    #[prost(message, optional, tag = "1")]
    pub object: Option<RawObject>,
}

/// Reads one object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    /// Plural resource name, e.g. `pods`.
    #[prost(string, tag = "1")]
    pub resource: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[prost(string, optional, tag = "2")]
    pub namespace: Option<String>,
    /// Object name.
    #[prost(string, tag = "3")]
    pub name: String,
}

/// `resourceVersionMatch` values of [`ListRequest::resource_version_match`].
pub mod resource_version_match {
    /// Not set.
    pub const UNSET: i32 = 0;
    /// `NotOlderThan`.
    pub const NOT_OLDER_THAN: i32 = 1;
    /// `Exact`.
    pub const EXACT: i32 = 2;
}

/// Lists objects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRequest {
    /// Plural resource name.
    #[prost(string, tag = "1")]
    pub resource: String,
    /// Namespace; absent for all namespaces.
    #[prost(string, optional, tag = "2")]
    pub namespace: Option<String>,
    /// Label selector.
    #[prost(string, optional, tag = "3")]
    pub label_selector: Option<String>,
    /// Field selector.
    #[prost(string, optional, tag = "4")]
    pub field_selector: Option<String>,
    /// Page size.
    #[prost(uint32, optional, tag = "5")]
    pub limit: Option<u32>,
    /// Continue token of the previous page.
    #[prost(string, optional, tag = "6")]
    pub continue_token: Option<String>,
    /// Resource version to read at.
    #[prost(string, optional, tag = "7")]
    pub resource_version: Option<String>,
    /// One of [`resource_version_match`]'s values.
    #[prost(int32, tag = "8")]
    pub resource_version_match: i32,
}

/// One page of a list.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListResponse {
    /// The objects.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<RawObject>,
    /// Resource version the list was read at.
    #[prost(string, tag = "2")]
    pub resource_version: String,
    /// Set when more pages follow.
    #[prost(string, optional, tag = "3")]
    pub continue_token: Option<String>,
    /// Objects after this page, when known.
    #[prost(int64, optional, tag = "4")]
    pub remaining_item_count: Option<i64>,
}

/// Applies a JSON merge patch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PatchRequest {
    /// Plural resource name.
    #[prost(string, tag = "1")]
    pub resource: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[prost(string, optional, tag = "2")]
    pub namespace: Option<String>,
    /// Object name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The patch as JSON.
    #[prost(bytes = "bytes", tag = "4")]
    pub patch: Bytes,
}

/// Deletes an object.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRequest {
    /// Plural resource name.
    #[prost(string, tag = "1")]
    pub resource: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[prost(string, optional, tag = "2")]
    pub namespace: Option<String>,
    /// Object name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Grace period for pods.
    #[prost(int64, optional, tag = "4")]
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the UID still matches.
    #[prost(string, optional, tag = "5")]
    pub precondition_uid: Option<String>,
    /// Delete only if the resource version still matches.
    #[prost(string, optional, tag = "6")]
    pub precondition_resource_version: Option<String>,
}

/// What a delete did.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteResponse {
    /// True when the object is only marked for deletion.
    #[prost(bool, tag = "1")]
    pub pending: bool,
    /// The object's last (or marked) state.
    #[prost(message, optional, tag = "2")]
    pub object: Option<RawObject>,
}

/// Watches changes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    /// Plural resource name.
    #[prost(string, tag = "1")]
    pub resource: String,
    /// Namespace; absent for all namespaces.
    #[prost(string, optional, tag = "2")]
    pub namespace: Option<String>,
    /// Label selector.
    #[prost(string, optional, tag = "3")]
    pub label_selector: Option<String>,
    /// Field selector.
    #[prost(string, optional, tag = "4")]
    pub field_selector: Option<String>,
    /// Deliver changes after this resource version.
    #[prost(string, optional, tag = "5")]
    pub resource_version: Option<String>,
    /// Ask for bookmarks.
    #[prost(bool, tag = "6")]
    pub bookmarks: bool,
}

/// Types of [`WatchEvent::r#type`].
pub mod event_type {
    /// The object was added.
    pub const ADDED: i32 = 1;
    /// The object changed.
    pub const MODIFIED: i32 = 2;
    /// The object was deleted.
    pub const DELETED: i32 = 3;
    /// Progress marker; only `resource_version` is set.
    pub const BOOKMARK: i32 = 4;
}

/// One change of a watch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchEvent {
    /// One of [`event_type`]'s values.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The object (absent for bookmarks).
    #[prost(message, optional, tag = "2")]
    pub object: Option<RawObject>,
    /// The resource version reached (bookmarks).
    #[prost(string, tag = "3")]
    pub resource_version: String,
}

/// Binds a pod to a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BindRequest {
    /// Namespace of the pod.
    #[prost(string, tag = "1")]
    pub namespace: String,
    /// Name of the pod.
    #[prost(string, tag = "2")]
    pub pod: String,
    /// Name of the node.
    #[prost(string, tag = "3")]
    pub node: String,
}

/// The structured error carried in a failed call's status details, so that
/// an [`ApiError`](ketch_core::ApiError) survives the trip exactly.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorDetails {
    /// The error variant, e.g. `NotFound`.
    #[prost(string, tag = "1")]
    pub reason: String,
    /// The message (for variants with one).
    #[prost(string, tag = "2")]
    pub message: String,
    /// Plural resource name (`NotFound`, `AlreadyExists`).
    #[prost(string, tag = "3")]
    pub resource: String,
    /// Object name (`NotFound`, `AlreadyExists`).
    #[prost(string, tag = "4")]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use prost::Message;
    use prost::encoding::{DecodeContext, WireType, decode_key, skip_field};

    use super::*;

    const PROTO: &str = include_str!("../../proto/ketch.proto");

    /// Field numbers and wire types of every message in the `.proto` file.
    fn declared() -> BTreeMap<String, BTreeSet<(u32, bool)>> {
        let mut out = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in PROTO.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("message ") {
                let name = rest.trim_end_matches('{').trim().to_string();
                out.insert(name.clone(), BTreeSet::new());
                current = Some(name);
            } else if line == "}" {
                current = None;
            } else if let Some(name) = &current {
                if line.starts_with("//") || line.is_empty() {
                    continue;
                }
                let (decl, number) = line.trim_end_matches(';').split_once('=').expect("field");
                let words: Vec<&str> = decl.split_whitespace().collect();
                let ty = words[words.len() - 2];
                let varint = matches!(ty, "int32" | "int64" | "uint32" | "bool");
                let number: u32 = number.trim().parse().expect("field number");
                out.get_mut(name).expect("message").insert((number, varint));
            }
        }
        out
    }

    /// Field numbers and wire types found in an encoded message.
    fn encoded(message: &impl Message) -> BTreeSet<(u32, bool)> {
        let bytes = message.encode_to_vec();
        let mut buf = bytes.as_slice();
        let mut out = BTreeSet::new();
        while !buf.is_empty() {
            let (tag, wire) = decode_key(&mut buf).expect("key");
            out.insert((tag, wire == WireType::Varint));
            skip_field(wire, tag, &mut buf, DecodeContext::default()).expect("skip");
        }
        out
    }

    #[test]
    fn messages_match_the_proto_file() {
        let raw = RawObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
            json: Bytes::from_static(b"{}"),
        };
        let s = || Some("x".to_string());
        let rust: Vec<(&str, BTreeSet<(u32, bool)>)> = vec![
            ("RawObject", encoded(&raw)),
            (
                "ObjectRequest",
                encoded(&ObjectRequest {
                    object: Some(raw.clone()),
                }),
            ),
            (
                "ObjectResponse",
                encoded(&ObjectResponse {
                    object: Some(raw.clone()),
                }),
            ),
            (
                "GetRequest",
                encoded(&GetRequest {
                    resource: "r".into(),
                    namespace: s(),
                    name: "n".into(),
                }),
            ),
            (
                "ListRequest",
                encoded(&ListRequest {
                    resource: "r".into(),
                    namespace: s(),
                    label_selector: s(),
                    field_selector: s(),
                    limit: Some(1),
                    continue_token: s(),
                    resource_version: s(),
                    resource_version_match: 1,
                }),
            ),
            (
                "ListResponse",
                encoded(&ListResponse {
                    items: vec![raw.clone()],
                    resource_version: "1".into(),
                    continue_token: s(),
                    remaining_item_count: Some(1),
                }),
            ),
            (
                "PatchRequest",
                encoded(&PatchRequest {
                    resource: "r".into(),
                    namespace: s(),
                    name: "n".into(),
                    patch: Bytes::from_static(b"{}"),
                }),
            ),
            (
                "DeleteRequest",
                encoded(&DeleteRequest {
                    resource: "r".into(),
                    namespace: s(),
                    name: "n".into(),
                    grace_period_seconds: Some(1),
                    precondition_uid: s(),
                    precondition_resource_version: s(),
                }),
            ),
            (
                "DeleteResponse",
                encoded(&DeleteResponse {
                    pending: true,
                    object: Some(raw.clone()),
                }),
            ),
            (
                "WatchRequest",
                encoded(&WatchRequest {
                    resource: "r".into(),
                    namespace: s(),
                    label_selector: s(),
                    field_selector: s(),
                    resource_version: s(),
                    bookmarks: true,
                }),
            ),
            (
                "WatchEvent",
                encoded(&WatchEvent {
                    r#type: 1,
                    object: Some(raw.clone()),
                    resource_version: "1".into(),
                }),
            ),
            (
                "BindRequest",
                encoded(&BindRequest {
                    namespace: "a".into(),
                    pod: "b".into(),
                    node: "c".into(),
                }),
            ),
            (
                "ErrorDetails",
                encoded(&ErrorDetails {
                    reason: "a".into(),
                    message: "b".into(),
                    resource: "c".into(),
                    name: "d".into(),
                }),
            ),
        ];
        let declared = declared();
        assert_eq!(
            declared.keys().cloned().collect::<BTreeSet<_>>(),
            rust.iter()
                .map(|(n, _)| n.to_string())
                .collect::<BTreeSet<_>>(),
            "the same messages on both sides"
        );
        for (name, fields) in rust {
            assert_eq!(declared[name], fields, "fields of {name}");
        }
        for method in [
            path::CREATE,
            path::GET,
            path::LIST,
            path::UPDATE,
            path::UPDATE_STATUS,
            path::PATCH,
            path::DELETE,
            path::WATCH,
            path::BIND,
        ] {
            let rpc = method.rsplit('/').next().expect("method name");
            assert!(PROTO.contains(&format!("rpc {rpc}(")), "{rpc} declared");
            assert!(method.starts_with(&format!("/{SERVICE}/")));
        }
    }
}
