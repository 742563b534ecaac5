//! EtcdStore over TLS with client certificates, against an etcd whose
//! certificates are made for the test with the `openssl` command.
#![cfg(feature = "etcd")]

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use ketch_core::store::Store;
use ketch_store::etcd::testing::EtcdCluster;
use ketch_store::etcd::{ConnectError, EtcdConfig, EtcdStore, EtcdTls};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, and a certificate signed by it for `name` with the given extensions.
fn certificates(dir: &Path) {
    let ca = |name: &str| {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
    };
    ca("ca");
    ca("other-ca");
    for (name, extensions) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("extension file");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).expect("certificate file")
}

#[tokio::test]
async fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    certificates(dir);
    let etcd = EtcdCluster::builder()
        .tls(
            dir.join("server.pem"),
            dir.join("server.key"),
            Some(dir.join("ca.pem")),
        )
        .start()
        .expect("etcd starts with TLS");
    let endpoints = etcd.endpoints();
    assert!(endpoints[0].starts_with("https://"));

    let tls = EtcdTls::new(read(dir, "ca.pem"))
        .client_identity(read(dir, "client.pem"), read(dir, "client.key"));
    let store = EtcdStore::connect(EtcdConfig::new(endpoints.clone()).tls(tls.clone()))
        .await
        .expect("connects over TLS");
    let kv = store
        .create("/tls", Bytes::from_static(b"secret"))
        .await
        .expect("create over TLS");
    assert_eq!(store.get("/tls").await, Ok(Some(kv)));

    // The TLS option and the endpoint scheme must agree.
    let plain = endpoints[0].replacen("https://", "http://", 1);
    assert!(matches!(
        EtcdStore::connect(EtcdConfig::new([plain]).tls(tls)).await,
        Err(ConnectError::InvalidEndpoint { .. })
    ));
    assert!(matches!(
        EtcdStore::connect(EtcdConfig::new(endpoints.clone())).await,
        Err(ConnectError::InvalidEndpoint { .. })
    ));

    // A member certificate from another CA, or no client certificate, fails
    // at connect time.
    let wrong_ca = EtcdTls::new(read(dir, "other-ca.pem"))
        .client_identity(read(dir, "client.pem"), read(dir, "client.key"));
    let no_identity = EtcdTls::new(read(dir, "ca.pem"));
    for (what, tls) in [
        ("wrong CA", wrong_ca),
        ("no client certificate", no_identity),
    ] {
        let result = EtcdStore::connect(
            EtcdConfig::new(endpoints.clone())
                .tls(tls)
                .connect_timeout(std::time::Duration::from_secs(2)),
        )
        .await;
        assert!(
            matches!(
                result,
                Err(ConnectError::Unreachable { .. } | ConnectError::InvalidTls(_))
            ),
            "{what}: {result:?}"
        );
    }
}
