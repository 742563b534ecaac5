//! One API test suite, two transports: every case of `api_suite_cases.rs`
//! runs against the in-process client and against the gRPC client, and must
//! give the same results. Then come the cases only a remote transport has:
//! authentication, size limits, malformed messages, deadlines, reconnects.

#[path = "api_suite_cases.rs"]
mod cases;

use std::sync::Arc;
use std::time::Duration;

use cases::{Backend, Severable, pod};
use ketch_apiserver::auth::{TokenFileAuthenticator, UserInfo};
use ketch_apiserver::grpc::{GrpcServer, RemoteClient, proto};
use ketch_apiserver::{ApiServer, CacheConfig};
use ketch_core::api::Pod;
use ketch_core::{Api, ApiError, Client, ListParams, ObjectEvent, Store, WatchParams};
use ketch_store::MemoryStore;

const ADMIN_TOKEN: &str = "admin-token";
const ALICE_TOKEN: &str = "alice-token";

async fn api_server() -> (ApiServer, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let authn = TokenFileAuthenticator::default()
        .with_token(ADMIN_TOKEN, UserInfo::admin())
        .with_token(
            ALICE_TOKEN,
            UserInfo::new("alice", &["system:authenticated"]),
        );
    let server = ApiServer::builder(store.clone())
        .authenticator(authn)
        .cache_config(CacheConfig {
            history: cases::CACHE_HISTORY,
            ..CacheConfig::default()
        })
        .build()
        .await
        .expect("server starts");
    (server, store)
}

async fn in_process() -> Backend {
    let (server, store) = api_server().await;
    let client = server.client();
    Backend {
        name: "in-process",
        severable: Severable::new(client.clone()),
        client,
        server,
        store,
    }
}

/// A gRPC server on a loopback port, serving `server`.
struct Served {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start(server: &ApiServer, addr: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let grpc = GrpcServer::for_api_server(server.clone());
        let task = tokio::spawn(async move {
            grpc.serve_with_listener(listener, std::future::pending())
                .await
                .expect("serve");
        });
        Self { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self, token: Option<&str>) -> RemoteClient {
        let mut builder = RemoteClient::builder(&self.url()).timeout(Duration::from_secs(10));
        if let Some(token) = token {
            builder = builder.token(token);
        }
        builder.connect_lazy().expect("client")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn grpc() -> (Backend, Served) {
    let (server, store) = api_server().await;
    let served = Served::start(&server, "127.0.0.1:0").await;
    let client: Arc<dyn Client> = Arc::new(served.client(Some(ADMIN_TOKEN)));
    let backend = Backend {
        name: "grpc",
        severable: Severable::new(client.clone()),
        client,
        server,
        store,
    };
    (backend, served)
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::in_process().await).await;
                }
            )*
        }
        mod over_grpc {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (backend, _served) = super::grpc().await;
                    super::cases::$case(&backend).await;
                }
            )*
        }
    };
}

suite!(
    crud,
    generated_names,
    conflicts,
    selectors,
    paging,
    watch,
    watch_too_old_is_expired,
    errors,
    bind,
    finalizers_keep_objects_pending,
    informer_recovers_from_compaction,
);

#[tokio::test]
async fn anonymous_and_unknown_tokens_are_unauthorized() {
    let (backend, served) = grpc().await;
    let anonymous = served.client(None);
    let err = anonymous
        .get("pods", Some("default"), "x")
        .await
        .expect_err("anonymous");
    assert!(matches!(err, ApiError::Unauthorized(_)), "{err:?}");
    let wrong = served.client(Some("not-a-token"));
    let err = wrong
        .list("pods", None, &ListParams::default())
        .await
        .expect_err("bad token");
    assert!(matches!(err, ApiError::Unauthorized(_)), "{err:?}");
    let err = wrong
        .watch("pods", None, &WatchParams::default())
        .await
        .err();
    assert!(matches!(err, Some(ApiError::Unauthorized(_))), "{err:?}");
    drop(backend);
}

#[tokio::test]
async fn identities_are_authorized_per_request() {
    let (_backend, served) = grpc().await;
    let alice = served.client(Some(ALICE_TOKEN));
    let err = alice
        .create(Box::new(pod("default", "a")))
        .await
        .expect_err("no RBAC grant");
    assert!(matches!(err, ApiError::Forbidden(_)), "{err:?}");
    let admin = served.client(Some(ADMIN_TOKEN));
    admin
        .create(Box::new(pod("default", "a")))
        .await
        .expect("admin may");
}

#[tokio::test]
async fn oversized_objects_are_too_large() {
    let (backend, _served) = grpc().await;
    let mut big = pod("default", "big");
    big.metadata
        .annotations
        .insert("blob".into(), "x".repeat(4 * 1024 * 1024));
    let err = backend
        .client
        .create(Box::new(big))
        .await
        .expect_err("too large");
    assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
    assert_eq!(err.code(), 413);

    // Just above the object limit but within the transport's envelope.
    let mut over = pod("default", "over");
    over.metadata
        .annotations
        .insert("blob".into(), "x".repeat(3 * 1024 * 1024 + 16));
    let err = backend
        .client
        .create(Box::new(over))
        .await
        .expect_err("too large");
    assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
}

/// Sends hand-made messages to the service, as a foreign client could.
async fn raw_call<Req: prost::Message + Send + Sync + 'static>(
    served: &Served,
    path: &'static str,
    message: Req,
) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(served.url())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().expect("ascii"),
    );
    grpc.unary::<Req, proto::ObjectResponse, _>(
        request,
        http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect_err("a malformed call fails")
}

#[tokio::test]
async fn malformed_messages_get_clear_errors() {
    let (_backend, served) = grpc().await;
    let cases: Vec<(proto::ObjectRequest, &str)> = vec![
        (proto::ObjectRequest { object: None }, "object: required"),
        (
            proto::ObjectRequest {
                object: Some(proto::RawObject {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    json: bytes::Bytes::from_static(b"{\"metadata\": {\"name\": 7}"),
                }),
            },
            "decoding Pod",
        ),
        (
            proto::ObjectRequest {
                object: Some(proto::RawObject {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    json: bytes::Bytes::from_static(
                        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":"http"}]}]}}"#,
                    ),
                }),
            },
            "spec.containers[0].ports[0].containerPort",
        ),
        (
            proto::ObjectRequest {
                object: Some(proto::RawObject {
                    api_version: "example.com/v1".into(),
                    kind: "Gadget".into(),
                    json: bytes::Bytes::from_static(
                        br#"{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"g"}}"#,
                    ),
                }),
            },
            "Gadget",
        ),
    ];
    for (message, needle) in cases {
        let status = raw_call(&served, proto::path::CREATE, message).await;
        let err = ketch_apiserver::grpc::error_from_status(&status);
        assert!(matches!(err, ApiError::BadRequest(_)), "{needle}: {err:?}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }

    // Bytes that are not the message at all: the transport's decoder says so.
    let garbage = proto::GetRequest {
        resource: "\u{1}\u{2}".into(),
        namespace: Some("\u{ff}".repeat(3)),
        name: String::new(),
    };
    let status = raw_call(&served, proto::path::LIST, garbage).await;
    assert_ne!(status.code(), tonic::Code::Ok);

    let status = raw_call(&served, "/ketch.v1.Api/Nope", proto::GetRequest::default()).await;
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn deadlines_end_calls_to_a_silent_server() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = RemoteClient::builder(&format!("http://{addr}"))
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect_lazy()
        .expect("client");
    let started = std::time::Instant::now();
    let err = client
        .get("pods", Some("default"), "x")
        .await
        .expect_err("no answer");
    assert!(
        matches!(err, ApiError::Timeout(_) | ApiError::Unavailable(_)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_watch_resumes_from_its_last_resource_version() {
    let (server, _store) = api_server().await;
    let served = Served::start(&server, "127.0.0.1:0").await;
    let addr = served.addr;
    let client = RemoteClient::builder(&served.url())
        .token(ADMIN_TOKEN)
        .watch_backoff(ketch_core::runtime::Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .connect_lazy()
        .expect("client");
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let list = client
        .list("pods", Some("default"), &ListParams::default())
        .await
        .expect("list");
    let mut stream = client
        .watch(
            "pods",
            Some("default"),
            &WatchParams::from_version(&list.resource_version),
        )
        .await
        .expect("watch");
    pods.create(pod("default", "one")).await.expect("create");
    let ev = cases::next_event(&mut stream).await.expect("first event");
    assert!(matches!(ev, ObjectEvent::Added(ref o) if o.metadata().name() == "one"));

    // The server goes away; changes happen meanwhile; it comes back.
    drop(served);
    tokio::time::sleep(Duration::from_millis(50)).await;
    pods.create(pod("default", "two")).await.expect("create");
    pods.create(pod("default", "three")).await.expect("create");
    let _back = Served::start(&server, &addr.to_string()).await;

    let mut got = Vec::new();
    for _ in 0..2 {
        match cases::next_event(&mut stream).await.expect("resumed") {
            ObjectEvent::Added(o) => got.push(o.metadata().name().to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, ["two", "three"], "no event lost or repeated");
}

/// A self-signed certificate for `localhost` (CA:FALSE, valid until 2126)
/// and its key, made for this test only.
#[cfg(feature = "tls")]
const TEST_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIBkjCCATigAwIBAgIUYGESyXGtx9Cb4SvNHAv5+lR63R4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjEzNTY0MVoYDzIxMjYxMDI5
MTM1NjQxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQZp/W2fDphp/CFxOdr8jZl5eXaQDH0h9DgEKZogea5CsW3C+RR3SYm
uFeCZrqRQITLYUwZd72tNprDz39zsctBo2YwZDAdBgNVHQ4EFgQU+htyf5a5ZAax
DmFgFFEHnaows1swHwYDVR0jBBgwFoAU+htyf5a5ZAaxDmFgFFEHnaows1swFAYD
VR0RBA0wC4IJbG9jYWxob3N0MAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwIDSAAw
RQIhAKRvVL2uySTGOa+piXTAT36I8TbF2vPI5K0JvUvSQsojAiAS+IfYPMQLjpx2
8mANf12zzAMzcVo5hGL51iFdn3DgIg==
-----END CERTIFICATE-----";
#[cfg(feature = "tls")]
const TEST_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5Elj2uGVHu5uno7o
nyq4pzCK0w0kADUTkhrrPEsDD/WhRANCAAQZp/W2fDphp/CFxOdr8jZl5eXaQDH0
h9DgEKZogea5CsW3C+RR3SYmuFeCZrqRQITLYUwZd72tNprDz39zsctB
-----END PRIVATE KEY-----";

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_and_plaintext_refused() {
    use ketch_apiserver::grpc::{ClientTls, ServerTls};
    let (server, _store) = api_server().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let grpc = GrpcServer::for_api_server(server);
    let task = tokio::spawn(grpc.serve_tls_with_listener(
        listener,
        ServerTls {
            cert_pem: TEST_CERT.as_bytes().to_vec(),
            key_pem: TEST_KEY.as_bytes().to_vec(),
        },
        std::future::pending(),
    ));
    let client = RemoteClient::builder(&format!("https://localhost:{}", addr.port()))
        .token(ADMIN_TOKEN)
        .tls(ClientTls {
            ca_pem: TEST_CERT.as_bytes().to_vec(),
            domain: Some("localhost".into()),
        })
        .connect()
        .await
        .expect("TLS connect");
    let created = client
        .create(Box::new(pod("default", "secure")))
        .await
        .expect("create over TLS");
    assert_eq!(created.metadata().name(), "secure");

    let err = RemoteClient::builder(&format!("https://localhost:{}", addr.port()))
        .tls(ClientTls {
            ca_pem: TEST_CERT.as_bytes().to_vec(),
            domain: Some("other.example".into()),
        })
        .connect()
        .await
        .expect_err("the certificate names localhost only");
    assert!(
        matches!(err, ketch_apiserver::grpc::GrpcError::TlsHandshake { .. }),
        "{err:?}"
    );
    let err = RemoteClient::builder(&format!("https://localhost:{}", addr.port()))
        .tls(ClientTls {
            ca_pem: b"not a certificate".to_vec(),
            domain: None,
        })
        .connect_lazy()
        .expect_err("no CA certificate");
    assert!(err.to_string().contains("ca_pem"), "{err}");

    let plain = RemoteClient::builder(&format!("http://{addr}"))
        .token(ADMIN_TOKEN)
        .timeout(Duration::from_secs(2))
        .connect_lazy()
        .expect("client");
    let err = plain
        .get("pods", Some("default"), "secure")
        .await
        .expect_err("plaintext");
    assert!(
        matches!(err, ApiError::Unavailable(_) | ApiError::Timeout(_)),
        "{err:?}"
    );
    task.abort();
}
