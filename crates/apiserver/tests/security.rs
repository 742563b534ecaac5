//! The security matrix: identities x verbs x resources x namespaces against
//! the expected allow/deny, including node restriction (node A cannot touch
//! node B or B's pods) and authentication of remote requests.

mod common;

use std::sync::Arc;

use common::pod;
use ketch_apiserver::ApiServer;
use ketch_apiserver::auth::{TokenFileAuthenticator, UserInfo};
use ketch_core::api::{
    ClusterRole, ClusterRoleBinding, Lease, Namespace, Node, Pod, PodPhase, PolicyRule, Role,
    RoleBinding, RoleRef, Service, ServicePort, Subject,
};
use ketch_core::{
    ApiError, Client, DeleteParams, ListParams, Object, ObjectMeta, Store, WatchParams,
};
use ketch_store::MemoryStore;

fn rule(verbs: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        api_groups: vec![String::new()],
        resources: resources.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn subject(kind: &str, name: &str) -> Subject {
    Subject {
        kind: kind.into(),
        name: name.into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

async fn setup() -> ApiServer {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ApiServer::builder(store).build().await.unwrap();
    let admin = server.client();
    for ns in ["team", "kube-node-lease"] {
        admin
            .create(Box::new(Namespace {
                metadata: ObjectMeta::cluster_named(ns),
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    for n in ["n1", "n2"] {
        admin
            .create(Box::new(Node {
                metadata: ObjectMeta::cluster_named(n),
                ..Default::default()
            }))
            .await
            .unwrap();
        admin
            .create(Box::new(Lease {
                metadata: ObjectMeta::named("kube-node-lease", n),
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    for (ns, name, node) in [
        ("default", "p1", Some("n1")),
        ("default", "p2", Some("n2")),
        ("default", "p3", Some("n1")),
        ("team", "t1", None),
        ("team", "t2", None),
    ] {
        admin.create(Box::new(pod(ns, name))).await.unwrap();
        if let Some(node) = node {
            admin.bind(ns, name, node).await.unwrap();
        }
    }
    admin
        .create(Box::new(Service {
            metadata: ObjectMeta::named("default", "web"),
            spec: ketch_core::api::ServiceSpec {
                ports: vec![ServicePort {
                    port: 80,
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }))
        .await
        .unwrap();
    let objects: Vec<Box<dyn Object>> = vec![
        Box::new(Role {
            metadata: ObjectMeta::named("team", "pod-reader"),
            rules: vec![rule(&["get", "list", "watch"], &["pods"])],
        }),
        Box::new(RoleBinding {
            metadata: ObjectMeta::named("team", "alice-reads-pods"),
            subjects: vec![subject("User", "alice")],
            role_ref: role_ref("Role", "pod-reader"),
        }),
        Box::new(ClusterRole {
            metadata: ObjectMeta::cluster_named("node-reader"),
            rules: vec![rule(&["get", "list"], &["nodes"])],
        }),
        Box::new(ClusterRoleBinding {
            metadata: ObjectMeta::cluster_named("readers-read-nodes"),
            subjects: vec![subject("Group", "readers")],
            role_ref: role_ref("ClusterRole", "node-reader"),
        }),
        Box::new(ClusterRole {
            metadata: ObjectMeta::cluster_named("pod-writer"),
            rules: vec![
                rule(&["create", "update", "delete", "get"], &["pods"]),
                rule(&["update"], &["pods/status"]),
            ],
        }),
        Box::new(RoleBinding {
            metadata: ObjectMeta::named("team", "carol-writes-pods"),
            subjects: vec![subject("User", "carol")],
            role_ref: role_ref("ClusterRole", "pod-writer"),
        }),
    ];
    for o in objects {
        admin.create(o).await.unwrap();
    }
    // A consistent list waits until the caches hold this server's writes,
    // so the RBAC authorizer sees every object above.
    for kind in [
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ] {
        admin
            .list(kind, None, &ListParams::default())
            .await
            .unwrap();
    }
    server
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Get(&'static str, Option<&'static str>, &'static str),
    List(&'static str, Option<&'static str>),
    Watch(&'static str, Option<&'static str>),
    CreatePod(&'static str, &'static str),
    UpdatePodLabels(&'static str, &'static str),
    PodStatus(&'static str, &'static str),
    DeletePod(&'static str, &'static str),
    UpdateNode(&'static str),
    NodeStatus(&'static str),
    DeleteNode(&'static str),
    UpdateLease(&'static str),
    CreateLease(&'static str),
    Bind(&'static str, &'static str, &'static str),
    CreateNamespace(&'static str),
    CreateNode(&'static str),
    PatchPod(&'static str, &'static str),
}

async fn run(admin: &Arc<dyn Client>, client: &Arc<dyn Client>, op: Op) -> Result<(), ApiError> {
    match op {
        Op::Get(res, ns, name) => client.get(res, ns, name).await.map(drop),
        Op::List(res, ns) => client.list(res, ns, &ListParams::default()).await.map(drop),
        Op::Watch(res, ns) => client
            .watch(res, ns, &WatchParams::default())
            .await
            .map(drop),
        Op::CreatePod(ns, name) => client.create(Box::new(pod(ns, name))).await.map(drop),
        Op::UpdatePodLabels(ns, name) => {
            let current = admin.get("pods", Some(ns), name).await?;
            let mut p: Pod = current.downcast_ref::<Pod>().cloned().unwrap();
            p.metadata.labels.insert("touched".into(), "yes".into());
            client.update(Box::new(p)).await.map(drop)
        }
        Op::PodStatus(ns, name) => {
            let current = admin.get("pods", Some(ns), name).await?;
            let mut p: Pod = current.downcast_ref::<Pod>().cloned().unwrap();
            p.status.phase = Some(PodPhase::Running);
            client.update_status(Box::new(p)).await.map(drop)
        }
        Op::DeletePod(ns, name) => client
            .delete("pods", Some(ns), name, &DeleteParams::default())
            .await
            .map(drop),
        Op::UpdateNode(name) => {
            let current = admin.get("nodes", None, name).await?;
            let mut n: Node = current.downcast_ref::<Node>().cloned().unwrap();
            n.metadata.labels.insert("zone".into(), "a".into());
            client.update(Box::new(n)).await.map(drop)
        }
        Op::NodeStatus(name) => {
            let current = admin.get("nodes", None, name).await?;
            let mut n: Node = current.downcast_ref::<Node>().cloned().unwrap();
            n.status.phase = Some("Running".into());
            client.update_status(Box::new(n)).await.map(drop)
        }
        Op::DeleteNode(name) => client
            .delete("nodes", None, name, &DeleteParams::default())
            .await
            .map(drop),
        Op::UpdateLease(name) => {
            let current = admin.get("leases", Some("kube-node-lease"), name).await?;
            let mut l: Lease = current.downcast_ref::<Lease>().cloned().unwrap();
            l.spec.holder_identity = Some(format!(
                "{name}-{}",
                l.metadata.resource_version.clone().unwrap_or_default()
            ));
            client.update(Box::new(l)).await.map(drop)
        }
        Op::CreateLease(name) => client
            .create(Box::new(Lease {
                metadata: ObjectMeta::named("kube-node-lease", name),
                ..Default::default()
            }))
            .await
            .map(drop),
        Op::Bind(ns, name, node) => client.bind(ns, name, node).await.map(drop),
        Op::CreateNamespace(name) => client
            .create(Box::new(Namespace {
                metadata: ObjectMeta::cluster_named(name),
                ..Default::default()
            }))
            .await
            .map(drop),
        Op::CreateNode(name) => client
            .create(Box::new(Node {
                metadata: ObjectMeta::cluster_named(name),
                ..Default::default()
            }))
            .await
            .map(drop),
        Op::PatchPod(ns, name) => client
            .patch(
                "pods",
                Some(ns),
                name,
                &serde_json::json!({"metadata": {"labels": {"patched": "yes"}}}),
            )
            .await
            .map(drop),
    }
}

const ALLOW: bool = true;
const DENY: bool = false;

#[tokio::test]
async fn identities_verbs_resources_namespaces() {
    let server = setup().await;
    let admin = server.client();
    let alice = server.client_as(UserInfo::new("alice", &["readers", "system:authenticated"]));
    let bob = server.client_as(UserInfo::new("bob", &["system:authenticated"]));
    let carol = server.client_as(UserInfo::new("carol", &["system:authenticated"]));
    let n1 = server.client_as(UserInfo::node("n1"));
    let anonymous = server.client_as(UserInfo::anonymous());
    let masters = server.client_as(UserInfo::new("root", &["system:masters"]));
    let n3 = server.client_as(UserInfo::node("n3"));
    use Op::*;
    let cases: Vec<(&str, &Arc<dyn Client>, Op, bool)> = vec![
        // Deny by default.
        ("bob", &bob, Get("pods", Some("default"), "p1"), DENY),
        ("bob", &bob, List("pods", None), DENY),
        ("bob", &bob, List("nodes", None), DENY),
        ("bob", &bob, Watch("pods", Some("team")), DENY),
        ("bob", &bob, CreatePod("team", "b1"), DENY),
        ("anonymous", &anonymous, List("pods", Some("default")), DENY),
        ("anonymous", &anonymous, Get("nodes", None, "n1"), DENY),
        // A Role in one namespace grants only there.
        ("alice", &alice, Get("pods", Some("team"), "t1"), ALLOW),
        ("alice", &alice, List("pods", Some("team")), ALLOW),
        ("alice", &alice, Watch("pods", Some("team")), ALLOW),
        ("alice", &alice, Get("pods", Some("default"), "p1"), DENY),
        ("alice", &alice, List("pods", None), DENY),
        ("alice", &alice, Watch("pods", Some("default")), DENY),
        ("alice", &alice, CreatePod("team", "a1"), DENY),
        ("alice", &alice, DeletePod("team", "t1"), DENY),
        ("alice", &alice, PodStatus("team", "t1"), DENY),
        // A ClusterRoleBinding to a group grants everywhere, only its verbs.
        ("alice", &alice, List("nodes", None), ALLOW),
        ("alice", &alice, Get("nodes", None, "n2"), ALLOW),
        ("alice", &alice, Watch("nodes", None), DENY),
        ("alice", &alice, UpdateNode("n1"), DENY),
        (
            "alice",
            &alice,
            Get("services", Some("default"), "web"),
            DENY,
        ),
        // A ClusterRole through a RoleBinding grants in the binding's namespace.
        ("carol", &carol, CreatePod("team", "c1"), ALLOW),
        ("carol", &carol, UpdatePodLabels("team", "c1"), ALLOW),
        ("carol", &carol, PodStatus("team", "c1"), ALLOW),
        ("carol", &carol, PatchPod("team", "c1"), DENY),
        ("carol", &carol, List("pods", Some("team")), DENY),
        ("carol", &carol, CreatePod("default", "c2"), DENY),
        ("carol", &carol, DeletePod("default", "p1"), DENY),
        ("carol", &carol, DeletePod("team", "c1"), ALLOW),
        // Node restriction: its own Node, Lease and pods only.
        ("n1", &n1, Get("nodes", None, "n1"), ALLOW),
        ("n1", &n1, Get("nodes", None, "n2"), ALLOW),
        ("n1", &n1, List("pods", None), ALLOW),
        ("n1", &n1, Watch("pods", None), ALLOW),
        ("n1", &n1, Get("services", Some("default"), "web"), ALLOW),
        ("n1", &n1, UpdateNode("n1"), ALLOW),
        ("n1", &n1, UpdateNode("n2"), DENY),
        ("n1", &n1, NodeStatus("n1"), ALLOW),
        ("n1", &n1, NodeStatus("n2"), DENY),
        ("n1", &n1, DeleteNode("n1"), DENY),
        ("n1", &n1, DeleteNode("n2"), DENY),
        ("n1", &n1, UpdateLease("n1"), ALLOW),
        ("n1", &n1, UpdateLease("n2"), DENY),
        ("n1", &n1, CreateLease("n2"), DENY),
        ("n1", &n1, PodStatus("default", "p1"), ALLOW),
        ("n1", &n1, PodStatus("default", "p2"), DENY),
        ("n1", &n1, PodStatus("team", "t2"), DENY),
        ("n1", &n1, UpdatePodLabels("default", "p1"), DENY),
        ("n1", &n1, PatchPod("default", "p1"), DENY),
        ("n1", &n1, DeletePod("default", "p2"), DENY),
        ("n1", &n1, DeletePod("default", "p3"), ALLOW),
        ("n1", &n1, CreatePod("default", "n1-pod"), DENY),
        ("n1", &n1, Bind("team", "t2", "n1"), DENY),
        ("n1", &n1, CreateNamespace("n1-ns"), DENY),
        ("n1", &n1, List("roles", Some("team")), DENY),
        // A new node registers itself and its lease, nothing else.
        ("n3", &n3, CreateNode("n4"), DENY),
        ("n3", &n3, CreateNode("n3"), ALLOW),
        ("n3", &n3, CreateLease("n3"), ALLOW),
        ("n3", &n3, CreateLease("n1"), DENY),
        ("n3", &n3, UpdateNode("n1"), DENY),
        // system:masters may do anything.
        ("root", &masters, DeleteNode("n2"), ALLOW),
        ("root", &masters, CreateNamespace("root-ns"), ALLOW),
        ("admin", &admin, Bind("team", "t2", "n1"), ALLOW),
    ];
    let mut failures = Vec::new();
    for (who, client, op, allow) in cases {
        let result = run(&admin, client, op).await;
        let ok = matches!(
            (&result, allow),
            (Ok(()), true) | (Err(ApiError::Forbidden(_)), false)
        );
        if !ok {
            failures.push(format!(
                "{who} {op:?}: expected {}, got {result:?}",
                if allow { "allow" } else { "forbidden" }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn node_watch_of_its_pods_needs_no_rbac() {
    let server = setup().await;
    let n1 = server.client_as(UserInfo::node("n1"));
    let list = n1
        .list(
            "pods",
            None,
            &ListParams::default().fields("spec.nodeName=n1"),
        )
        .await
        .unwrap();
    let mut names: Vec<_> = list
        .items
        .iter()
        .map(|p| p.metadata().name().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["p1", "p3"]);
}

#[tokio::test]
async fn remote_requests_authenticate_by_bearer_token() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tokens = TokenFileAuthenticator::parse(
        "admin-t,admin,1,\"system:masters\"\nnode-t,system:node:n1,n1,\"system:nodes\"\n",
    )
    .unwrap();
    let server = ApiServer::builder(store.clone())
        .authenticator(tokens.clone())
        .build()
        .await
        .unwrap();
    assert!(matches!(
        server.authenticate(None),
        Err(ApiError::Unauthorized(_))
    ));
    assert!(matches!(
        server.authenticate(Some("")),
        Err(ApiError::Unauthorized(_))
    ));
    assert!(matches!(
        server.authenticate(Some("wrong")),
        Err(ApiError::Unauthorized(_))
    ));
    assert!(
        server
            .authenticate(Some("admin-t"))
            .unwrap()
            .is_privileged()
    );
    assert_eq!(
        server.authenticate(Some("node-t")).unwrap().node_name(),
        Some("n1")
    );
    let open = ApiServer::builder(store)
        .authenticator(tokens)
        .allow_anonymous(true)
        .build()
        .await
        .unwrap();
    let anon = open.authenticate(None).unwrap();
    assert_eq!(anon, UserInfo::anonymous());
    let err = open
        .client_as(anon)
        .list("pods", None, &ListParams::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Forbidden(_)), "{err:?}");
}
