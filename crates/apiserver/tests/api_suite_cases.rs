//! The cases of the API test suite. Each takes a [`Backend`] and must hold
//! the same way whatever transport the backend's client uses; `api_suite.rs`
//! runs every case in process and over gRPC.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ketch_apiserver::ApiServer;
use ketch_core::api::{Container, Pod, PodPhase, PodSpec};
use ketch_core::runtime::{
    Backoff, Indexer, NODE_NAME_INDEX, ReflectorConfig, SharedInformerFactory,
};
use ketch_core::{
    Api, ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object, ObjectEvent,
    ObjectEventStream, ObjectList, ObjectMeta, Store, WatchParams,
};

/// Events the API server's watch cache keeps for resuming watches; small,
/// so that the suite can outrun it.
pub const CACHE_HISTORY: usize = 32;

/// One way of reaching an API server.
pub struct Backend {
    /// `in-process` or `grpc`.
    pub name: &'static str,
    /// A privileged client.
    pub client: Arc<dyn Client>,
    /// The same client behind a switch that can cut its watches.
    pub severable: Arc<Severable>,
    /// The server.
    pub server: ApiServer,
    /// The server's store.
    pub store: Arc<dyn Store>,
}

/// A minimal valid pod.
pub fn pod(ns: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named(ns, name),
        spec: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1.27".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

fn labelled(ns: &str, name: &str, key: &str, value: &str) -> Pod {
    let mut p = pod(ns, name);
    p.metadata.labels.insert(key.into(), value.into());
    p
}

async fn namespace(b: &Backend, name: &str) {
    let ns = ketch_core::api::Namespace {
        metadata: ObjectMeta::cluster_named(name),
        ..Default::default()
    };
    b.client
        .create(Box::new(ns))
        .await
        .expect("namespace created");
}

/// The next event of a watch, failing after five seconds.
pub async fn next_event(stream: &mut ObjectEventStream) -> Result<ObjectEvent, ApiError> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream goes on");
        if !matches!(event, Ok(ObjectEvent::Bookmark { .. })) {
            return event;
        }
    }
}

/// `Added web`, `Deleted db`, ...
fn describe(ev: &ObjectEvent) -> String {
    match ev {
        ObjectEvent::Added(o) => format!("Added {}", o.metadata().name()),
        ObjectEvent::Modified(o) => format!("Modified {}", o.metadata().name()),
        ObjectEvent::Deleted(o) => format!("Deleted {}", o.metadata().name()),
        ObjectEvent::Bookmark { resource_version } => format!("Bookmark {resource_version}"),
    }
}

fn names(list: &ObjectList) -> Vec<String> {
    list.items
        .iter()
        .map(|o| o.metadata().name().to_string())
        .collect()
}

fn typed(obj: ArcObject) -> Arc<Pod> {
    ketch_core::client::into_typed::<Pod>(obj).expect("a pod")
}

/// Polls until `cond` holds, failing after ten seconds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Create, get, update, update status, patch and delete one pod.
pub async fn crud(b: &Backend) {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "default");
    let created = pods.create(pod("default", "web")).await.expect("create");
    assert!(created.metadata.uid.is_some(), "{}: uid", b.name);
    assert!(
        created.metadata.creation_timestamp.is_some(),
        "{}: timestamp",
        b.name
    );
    let rv1 = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");

    let got = pods.get("web").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let mut changed = (*got).clone();
    changed
        .metadata
        .labels
        .insert("tier".into(), "front".into());
    let updated = pods.update(changed).await.expect("update");
    assert_eq!(updated.metadata.labels["tier"], "front");
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );

    let mut status = (*updated).clone();
    status.status.phase = Some(PodPhase::Running);
    let with_status = pods.update_status(status).await.expect("update status");
    assert_eq!(with_status.status.phase, Some(PodPhase::Running));

    let patched = pods
        .patch(
            "web",
            &serde_json::json!({"metadata": {"labels": {"patched": "yes"}}}),
        )
        .await
        .expect("patch");
    assert_eq!(patched.metadata.labels["patched"], "yes");
    assert_eq!(patched.metadata.labels["tier"], "front");
    assert_eq!(patched.status.phase, Some(PodPhase::Running));

    let outcome = pods
        .delete(
            "web",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    match outcome {
        DeleteOutcome::Deleted(o) => assert_eq!(o.metadata().name(), "web"),
        DeleteOutcome::Pending(o) => panic!("{}: expected deletion, got pending {o:?}", b.name),
    }
    assert!(
        pods.get_opt("web")
            .await
            .expect("get after delete")
            .is_none()
    );
}

/// `generateName` yields distinct names with the prefix.
pub async fn generated_names(b: &Backend) {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "default");
    let mut p = pod("default", "");
    p.metadata.name = None;
    p.metadata.generate_name = Some("worker-".into());
    let a = pods.create(p.clone()).await.expect("first");
    let c = pods.create(p).await.expect("second");
    assert!(
        a.metadata.name().starts_with("worker-"),
        "{}",
        a.metadata.name()
    );
    assert_ne!(a.metadata.name(), c.metadata.name());
}

/// A stale resourceVersion is a `Conflict`; a duplicate name is `AlreadyExists`.
pub async fn conflicts(b: &Backend) {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "default");
    let first = pods.create(pod("default", "c")).await.expect("create");
    let mut a = (*first).clone();
    a.metadata.labels.insert("by".into(), "a".into());
    pods.update(a).await.expect("first writer wins");
    let mut stale = (*first).clone();
    stale.metadata.labels.insert("by".into(), "b".into());
    let err = pods.update(stale).await.expect_err("stale write");
    assert!(matches!(err, ApiError::Conflict(_)), "{}: {err:?}", b.name);
    assert!(err.is_retryable());

    let err = pods
        .create(pod("default", "c"))
        .await
        .expect_err("duplicate");
    assert_eq!(
        err,
        ApiError::AlreadyExists {
            resource: "pods".into(),
            name: "c".into()
        },
        "{}",
        b.name
    );
}

/// Label (equality and set-based) and field selectors on lists; a bad selector is `BadRequest`.
pub async fn selectors(b: &Backend) {
    namespace(b, "sel").await;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "sel");
    for (name, app) in [("a1", "api"), ("a2", "api"), ("w1", "web")] {
        pods.create(labelled("sel", name, "app", app))
            .await
            .expect("create");
    }
    pods.create(pod("sel", "plain")).await.expect("create");
    b.client.bind("sel", "a1", "n1").await.expect("bind");

    let list = b
        .client
        .list(
            "pods",
            Some("sel"),
            &ListParams::default().labels("app=api"),
        )
        .await
        .expect("label list");
    let mut got = names(&list);
    got.sort();
    assert_eq!(got, ["a1", "a2"], "{}", b.name);

    let list = b
        .client
        .list(
            "pods",
            Some("sel"),
            &ListParams::default().labels("app,app!=api"),
        )
        .await
        .expect("set-based list");
    assert_eq!(names(&list), ["w1"], "{}", b.name);

    let list = b
        .client
        .list(
            "pods",
            Some("sel"),
            &ListParams::default().fields("spec.nodeName=n1"),
        )
        .await
        .expect("field list");
    assert_eq!(names(&list), ["a1"], "{}", b.name);

    let list = b
        .client
        .list(
            "pods",
            None,
            &ListParams::default().fields("metadata.namespace=sel"),
        )
        .await
        .expect("cross-namespace list");
    assert_eq!(list.items.len(), 4, "{}", b.name);

    let err = b
        .client
        .list(
            "pods",
            Some("sel"),
            &ListParams::default().labels("app in (api"),
        )
        .await
        .expect_err("bad selector");
    assert!(
        matches!(err, ApiError::BadRequest(_)),
        "{}: {err:?}",
        b.name
    );
}

/// Pages of a list share one snapshot and return every object once, in key order.
pub async fn paging(b: &Backend) {
    namespace(b, "paged").await;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "paged");
    for i in 0..25 {
        pods.create(pod("paged", &format!("p{i:02}")))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    let mut rv = None;
    loop {
        let page = b
            .client
            .list("pods", Some("paged"), &params)
            .await
            .expect("page");
        pages += 1;
        assert!(page.items.len() <= 10);
        if let Some(rv) = &rv {
            assert_eq!(
                &page.resource_version, rv,
                "{}: pages share a snapshot",
                b.name
            );
        }
        rv = Some(page.resource_version.clone());
        seen.extend(names(&page));
        // A write between pages must not show up in later pages.
        if pages == 1 {
            pods.create(pod("paged", "p99"))
                .await
                .expect("create between pages");
        }
        match page.continue_token {
            Some(token) => params.continue_token = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3, "{}", b.name);
    let expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(
        seen, expected,
        "{}: every object once, in key order",
        b.name
    );
}

/// A watch delivers changes in order; a field-filtered watch sees a pod enter its selector as an add.
pub async fn watch(b: &Backend) {
    namespace(b, "w").await;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "w");
    pods.create(pod("w", "before")).await.expect("create");
    let list = b
        .client
        .list("pods", Some("w"), &ListParams::default())
        .await
        .expect("list");
    let mut stream = b
        .client
        .watch(
            "pods",
            Some("w"),
            &WatchParams::from_version(&list.resource_version),
        )
        .await
        .expect("watch");
    let created = pods.create(pod("w", "a")).await.expect("create");
    let mut changed = (*created).clone();
    changed.metadata.labels.insert("x".into(), "y".into());
    pods.update(changed).await.expect("update");
    pods.delete(
        "a",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(describe(&next_event(&mut stream).await.expect("event")));
    }
    assert_eq!(got, ["Added a", "Modified a", "Deleted a"], "{}", b.name);

    // Filtered watch: only pods bound to n7.
    let mut bound = b
        .client
        .watch(
            "pods",
            Some("w"),
            &WatchParams::default().fields("spec.nodeName=n7"),
        )
        .await
        .expect("filtered watch");
    pods.create(pod("w", "elsewhere")).await.expect("create");
    pods.create(pod("w", "mine")).await.expect("create");
    b.client.bind("w", "elsewhere", "n8").await.expect("bind");
    b.client.bind("w", "mine", "n7").await.expect("bind");
    let ev = next_event(&mut bound).await.expect("event");
    assert_eq!(
        describe(&ev),
        "Added mine",
        "{}: entering the selector is an add",
        b.name
    );
    if let ObjectEvent::Added(o) = ev {
        assert_eq!(typed(o).spec.node_name.as_deref(), Some("n7"));
    }
}

/// A watch from a compacted revision fails `Expired`.
pub async fn watch_too_old_is_expired(b: &Backend) {
    namespace(b, "old").await;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "old");
    let first = pods.create(pod("old", "first")).await.expect("create");
    let rv = first.metadata.resource_version.clone().expect("rv");
    for i in 0..(CACHE_HISTORY + 8) {
        pods.create(pod("old", &format!("p{i}")))
            .await
            .expect("create");
    }
    let revision = b.store.current_revision().await.expect("revision");
    b.store.compact(revision).await.expect("compact");
    // The server's cache follows the store asynchronously: until it has
    // seen the newer writes, the old revision is still inside its window
    // and the watch is (correctly) served. Once it has, the watch expires.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let result = b
            .client
            .watch("pods", Some("old"), &WatchParams::from_version(&rv))
            .await;
        let outcome = match result {
            Err(e) => Err(e),
            Ok(mut stream) => next_event(&mut stream).await,
        };
        match outcome {
            Err(ApiError::Expired(_)) => break,
            Err(other) => panic!("{}: expected Expired, got {other:?}", b.name),
            Ok(ObjectEvent::Added(o)) => {
                let got = o.metadata().revision().expect("revision");
                let from: i64 = rv.parse().expect("numeric");
                assert_eq!(
                    got,
                    from + 1,
                    "{}: a served watch starts right after {rv}",
                    b.name
                );
            }
            Ok(other) => panic!("{}: unexpected {other:?}", b.name),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: never expired",
            b.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Errors keep their variant and fields: `NotFound`, `Invalid` with field paths, unknown resources, missing namespaces.
pub async fn errors(b: &Backend) {
    let err = b
        .client
        .get("pods", Some("default"), "missing")
        .await
        .expect_err("missing");
    assert_eq!(
        err,
        ApiError::NotFound {
            resource: "pods".into(),
            name: "missing".into()
        },
        "{}",
        b.name
    );
    assert_eq!(err.code(), 404);

    let mut invalid = pod("default", "Not_A_Name");
    invalid.spec.containers.clear();
    let err = b
        .client
        .create(Box::new(invalid))
        .await
        .expect_err("invalid");
    match &err {
        ApiError::Invalid(msg) => {
            assert!(msg.contains("metadata.name"), "{}: {msg}", b.name);
            assert!(msg.contains("spec.containers"), "{}: {msg}", b.name);
        }
        other => panic!("{}: expected Invalid, got {other:?}", b.name),
    }

    let err = b
        .client
        .list("widgets", None, &ListParams::default())
        .await
        .expect_err("unknown resource");
    assert_eq!(err.code(), 404, "{}: {err:?}", b.name);

    let err = b
        .client
        .create(Box::new(pod("nowhere", "p")))
        .await
        .expect_err("no namespace");
    assert!(
        matches!(err, ApiError::NotFound { ref resource, .. } if resource == "namespaces"),
        "{}: {err:?}",
        b.name
    );
}

/// Binding sets `spec.nodeName`; binding a bound pod is a `Conflict`.
pub async fn bind(b: &Backend) {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "default");
    pods.create(pod("default", "b")).await.expect("create");
    let bound = typed(b.client.bind("default", "b", "n1").await.expect("bind"));
    assert_eq!(bound.spec.node_name.as_deref(), Some("n1"));
    let err = b
        .client
        .bind("default", "b", "n2")
        .await
        .expect_err("bound twice");
    assert!(matches!(err, ApiError::Conflict(_)), "{}: {err:?}", b.name);
}

/// A delete of an object with finalizers marks it; clearing them removes it.
pub async fn finalizers_keep_objects_pending(b: &Backend) {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "default");
    let mut p = pod("default", "held");
    p.metadata.finalizers.push("example.com/hold".into());
    pods.create(p).await.expect("create");
    let outcome = pods
        .delete(
            "held",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    let marked = match outcome {
        DeleteOutcome::Pending(o) => typed(o),
        DeleteOutcome::Deleted(_) => panic!("{}: removed despite a finalizer", b.name),
    };
    assert!(marked.metadata.deletion_timestamp.is_some());
    let released = pods
        .patch(
            "held",
            &serde_json::json!({"metadata": {"finalizers": null}}),
        )
        .await;
    match released {
        Ok(p) => assert!(p.metadata.finalizers.is_empty()),
        Err(ApiError::NotFound { .. }) => {}
        Err(e) => panic!("{}: clearing finalizers failed: {e:?}", b.name),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pods.get_opt("held").await.expect("get").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: still there after its finalizer was cleared",
            b.name
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fast_reflector() -> ReflectorConfig {
    ReflectorConfig::default()
        .page_size(7)
        .backoff(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(100),
        ))
}

fn store_view(list: &ObjectList) -> BTreeSet<(String, String)> {
    list.items
        .iter()
        .map(|o| {
            (
                o.metadata().name().to_string(),
                o.metadata().resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn cache_view(reader: &ketch_core::runtime::CacheReader<Pod>) -> BTreeSet<(String, String)> {
    reader
        .list()
        .iter()
        .map(|p| {
            (
                p.metadata.name().to_string(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Compacting the store under a watching informer: once its watch resumes
/// from a revision the server no longer has, it relists and ends equal to
/// the store.
pub async fn informer_recovers_from_compaction(b: &Backend) {
    namespace(b, "inf").await;
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "inf");
    for i in 0..10 {
        pods.create(pod("inf", &format!("p{i}")))
            .await
            .expect("create");
    }
    let client: Arc<dyn Client> = b.severable.clone();
    let factory = SharedInformerFactory::with_config(client, fast_reflector());
    let informer =
        factory.informer_for::<Pod>(ketch_core::runtime::InformerScope::all().namespace("inf"));
    informer.add_indexer(Indexer::pods_by_node_name());
    factory.wait_for_sync().await;
    assert_eq!(informer.reader().len(), 10, "{}", b.name);
    pods.create(pod("inf", "live")).await.expect("create");
    eventually("live event", || {
        informer.reader().get(Some("inf"), "live").is_some()
    })
    .await;

    // Cut the watch and keep it down while the store moves on and compacts.
    b.severable.cut(true);
    for i in 0..5 {
        pods.delete(
            &format!("p{i}"),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    }
    b.client.bind("inf", "p9", "n1").await.expect("bind");
    for i in 0..CACHE_HISTORY {
        pods.create(pod("inf", &format!("q{i}")))
            .await
            .expect("create");
    }
    let revision = b.store.current_revision().await.expect("revision");
    b.store.compact(revision).await.expect("compact");
    b.severable.cut(false);

    let truth = b
        .client
        .list("pods", Some("inf"), &ListParams::default())
        .await
        .expect("list");
    let want = store_view(&truth);
    eventually("the cache equals the store", || {
        cache_view(&informer.reader()) == want
    })
    .await;
    let stats = informer.stats();
    assert!(stats.lists >= 2, "{}: relisted: {stats:?}", b.name);
    assert!(stats.expired >= 1, "{}: saw Expired: {stats:?}", b.name);
    assert_eq!(
        informer
            .reader()
            .by_index(NODE_NAME_INDEX, "n1")
            .expect("index")
            .len(),
        1,
        "{}: the index follows the relist",
        b.name
    );

    // And it follows live changes again.
    pods.create(pod("inf", "after")).await.expect("create");
    eventually("live event after the relist", || {
        informer.reader().get(Some("inf"), "after").is_some()
    })
    .await;
    factory.shutdown();
}

/// A [`Client`] whose watches can be cut: while cut, open watches end with
/// `Unavailable` and new ones fail.
pub struct Severable {
    inner: Arc<dyn Client>,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Severable {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Client>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            cut: tokio::sync::watch::channel(false).0,
        })
    }

    /// Cuts (or restores) watches.
    pub fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[async_trait::async_trait]
impl Client for Severable {
    async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.create(object).await
    }
    async fn get(&self, r: &str, ns: Option<&str>, name: &str) -> Result<ArcObject, ApiError> {
        self.inner.get(r, ns, name).await
    }
    async fn list(
        &self,
        r: &str,
        ns: Option<&str>,
        p: &ListParams,
    ) -> Result<ObjectList, ApiError> {
        if *self.cut.borrow() {
            return Err(ApiError::Unavailable("cut".into()));
        }
        self.inner.list(r, ns, p).await
    }
    async fn update(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.update(object).await
    }
    async fn update_status(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        self.inner.update_status(object).await
    }
    async fn patch(
        &self,
        r: &str,
        ns: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        self.inner.patch(r, ns, name, patch).await
    }
    async fn delete(
        &self,
        r: &str,
        ns: Option<&str>,
        name: &str,
        p: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        self.inner.delete(r, ns, name, p).await
    }
    async fn watch(
        &self,
        r: &str,
        ns: Option<&str>,
        p: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        if *self.cut.borrow() {
            return Err(ApiError::Unavailable("cut".into()));
        }
        let inner = self.inner.watch(r, ns, p).await?;
        let mut cut = self.cut.subscribe();
        let ended = async move {
            let _ = cut.wait_for(|c| *c).await;
        };
        let stream = inner.take_until(ended).chain(futures::stream::once(async {
            Err(ApiError::Unavailable("watch cut".into()))
        }));
        Ok(stream.boxed())
    }
    async fn bind(&self, ns: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError> {
        self.inner.bind(ns, pod, node).await
    }
}
