//! Bad input, each with its expected error: oversized, malformed, wrong
//! kind, invalid names, quantities and parameters. Nothing panics.

mod common;

use common::{pod, server};
use ketch_core::Quantity;
use ketch_core::api::{Pod, ResourceRequirements};
use ketch_core::{
    ApiError, DeleteParams, DynamicObject, ListParams, ObjectMeta, ResourceVersionMatch,
    WatchParams,
};

/// Which error, and a piece its message must contain.
fn check(case: &str, result: Result<(), ApiError>, code: u16, needle: &str) -> Option<String> {
    match result {
        Err(e) if e.code() == code && e.to_string().contains(needle) => None,
        other => Some(format!(
            "{case}: expected {code} containing {needle:?}, got {other:?}"
        )),
    }
}

#[tokio::test]
async fn request_bodies() {
    let (server, _) = server().await;
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"a","namespace":"default","annotations":{{"x":"{}"}}}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("oversized body", big.into_bytes(), 413, "limit is 3145728 bytes"),
        ("malformed JSON", br#"{"apiVersion": "v1", "kind":"#.to_vec(), 400, "malformed JSON"),
        ("not JSON", b"\xff\xfe".to_vec(), 400, "malformed JSON"),
        ("not an object", b"[1, 2]".to_vec(), 400, "must be a JSON object"),
        ("missing kind", br#"{"apiVersion": "v1"}"#.to_vec(), 400, "kind: required field is missing"),
        ("missing apiVersion", br#"{"kind": "Pod"}"#.to_vec(), 400, "apiVersion: required"),
        (
            "unknown kind",
            br#"{"apiVersion": "v1", "kind": "Pad"}"#.to_vec(),
            400,
            "unknown kind \"Pad\"",
        ),
        (
            "kind in the wrong group",
            br#"{"apiVersion": "apps/v1", "kind": "Pod"}"#.to_vec(),
            400,
            "unknown kind \"Pod\" in apiVersion \"apps/v1\"",
        ),
        (
            "field of the wrong type",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"eighty"}]}]}}"#.to_vec(),
            400,
            "spec.containers[0].ports[0].containerPort",
        ),
        (
            "unknown field",
            br#"{"apiVersion":"v1","kind":"Pod","spec":{"nodeNmae":"n1"}}"#.to_vec(),
            400,
            "nodeNmae",
        ),
    ];
    let mut failures = Vec::new();
    for (case, body, code, needle) in cases {
        failures.extend(check(
            case,
            server.decode_object(&body).map(drop),
            code,
            needle,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let ok = server
        .decode_object(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}"#)
        .unwrap();
    assert!(ok.is::<Pod>());
}

fn with_cpu(mut p: Pod, cpu: &str) -> Pod {
    p.spec.containers[0].resources = Some(ResourceRequirements {
        requests: [("cpu".to_string(), Quantity::from(cpu))].into(),
        ..Default::default()
    });
    p
}

#[tokio::test]
async fn objects_and_parameters() {
    let (server, _) = server().await;
    let client = server.client();
    client.create(Box::new(pod("default", "ok"))).await.unwrap();
    let mut huge = pod("default", "huge");
    huge.spec.containers[0].args = vec!["x".repeat(4 * 1024 * 1024)];
    let mut no_name = pod("default", "");
    no_name.metadata.name = None;
    let mut no_ns = pod("default", "a");
    no_ns.metadata.namespace = None;
    let mut no_containers = pod("default", "empty");
    no_containers.spec.containers.clear();
    let wrong_version = DynamicObject {
        api_version: "v2".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta::named("default", "v2"),
        data: Default::default(),
    };
    let mut failures = Vec::new();
    let mut expect = |case: &str, r: Result<(), ApiError>, code: u16, needle: &str| {
        failures.extend(check(case, r, code, needle));
    };
    expect(
        "oversized object",
        client.create(Box::new(huge)).await.map(drop),
        413,
        "limit is 3145728 bytes",
    );
    expect(
        "invalid name",
        client
            .create(Box::new(pod("default", "Bad_Name")))
            .await
            .map(drop),
        422,
        "metadata.name: Invalid value: \"Bad_Name\"",
    );
    expect(
        "name too long",
        client
            .create(Box::new(pod("default", &"a".repeat(254))))
            .await
            .map(drop),
        422,
        "metadata.name",
    );
    expect(
        "missing name",
        client.create(Box::new(no_name)).await.map(drop),
        422,
        "metadata.name: Required value",
    );
    expect(
        "missing namespace",
        client.create(Box::new(no_ns)).await.map(drop),
        400,
        "metadata.namespace is required",
    );
    expect(
        "invalid quantity",
        client
            .create(Box::new(with_cpu(pod("default", "q"), "lots")))
            .await
            .map(drop),
        422,
        "spec.containers[0].resources.requests.cpu: invalid quantity \"lots\"",
    );
    expect(
        "negative quantity",
        client
            .create(Box::new(with_cpu(pod("default", "q2"), "-1")))
            .await
            .map(drop),
        422,
        "requests.cpu: Invalid value: \"-1\"",
    );
    expect(
        "no containers",
        client.create(Box::new(no_containers)).await.map(drop),
        422,
        "spec.containers: Required value",
    );
    expect(
        "kind not served in that version",
        client.create(Box::new(wrong_version)).await.map(drop),
        400,
        "no kind \"Pod\" is served in apiVersion \"v2\"",
    );
    expect(
        "duplicate",
        client
            .create(Box::new(pod("default", "ok")))
            .await
            .map(drop),
        409,
        "already exists",
    );
    expect(
        "unknown resource",
        client
            .list("widgets", None, &ListParams::default())
            .await
            .map(drop),
        404,
        "widgets",
    );
    expect(
        "bad label selector",
        client
            .list("pods", None, &ListParams::default().labels("app in web"))
            .await
            .map(drop),
        400,
        "invalid label selector",
    );
    expect(
        "unsupported field selector",
        client
            .list("pods", None, &ListParams::default().fields("spec.host=a"))
            .await
            .map(drop),
        400,
        "field label not supported: spec.host",
    );
    expect(
        "malformed field selector",
        client
            .list("pods", None, &ListParams::default().fields("spec.nodeName"))
            .await
            .map(drop),
        400,
        "not of the form",
    );
    expect(
        "bad resourceVersion on watch",
        client
            .watch("pods", None, &WatchParams::from_version("abc"))
            .await
            .map(drop),
        400,
        "invalid resourceVersion \"abc\"",
    );
    expect(
        "exact match without a version",
        client
            .list(
                "pods",
                None,
                &ListParams {
                    resource_version_match: Some(ResourceVersionMatch::Exact),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        400,
        "needs a resourceVersion",
    );
    expect(
        "garbage continue token",
        client
            .list(
                "pods",
                None,
                &ListParams::default().limit(1).continue_from("%%%"),
            )
            .await
            .map(drop),
        400,
        "continue token",
    );
    expect(
        "negative grace period",
        client
            .delete(
                "pods",
                Some("default"),
                "ok",
                &DeleteParams {
                    grace_period_seconds: Some(-1),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        400,
        "gracePeriodSeconds",
    );
    expect(
        "patch that is not an object",
        client
            .patch("pods", Some("default"), "ok", &serde_json::json!([1]))
            .await
            .map(drop),
        400,
        "must be a JSON object",
    );
    expect(
        "patch changing the kind",
        client
            .patch(
                "pods",
                Some("default"),
                "ok",
                &serde_json::json!({"kind": "Node"}),
            )
            .await
            .map(drop),
        400,
        "may not change kind",
    );
    expect(
        "patch with a field of the wrong type",
        client
            .patch(
                "pods",
                Some("default"),
                "ok",
                &serde_json::json!({"spec": {"priority": "high"}}),
            )
            .await
            .map(drop),
        400,
        "spec.priority",
    );
    expect(
        "bind to an invalid node name",
        client.bind("default", "ok", "Bad Node").await.map(drop),
        422,
        "target.name",
    );
    expect(
        "get without a namespace",
        client.get("pods", None, "ok").await.map(drop),
        400,
        "namespace is required",
    );
    expect(
        "status of a kind without status",
        client
            .update_status(Box::new(ketch_core::api::Endpoints {
                metadata: ObjectMeta::named("default", "e"),
                ..Default::default()
            }))
            .await
            .map(drop),
        404,
        "endpoints/status",
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
