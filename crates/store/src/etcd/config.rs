//! Configuration of an [`EtcdStore`](super::EtcdStore) connection and the
//! errors of connecting.

use std::fmt;
use std::time::Duration;

/// The default key prefix: every key of the store lives under `/ketch/`.
pub const DEFAULT_PREFIX: &str = "/ketch/";

/// Longest accepted key prefix, in bytes.
const MAX_PREFIX_LEN: usize = 256;

/// Where and how [`EtcdStore::connect`](super::EtcdStore::connect) reaches etcd.
///
/// Built from a list of endpoints and refined with the builder methods; every
/// option is checked by `connect`, which fails with a [`ConnectError`] that
/// names the bad option.
///
/// ```
/// use std::time::Duration;
/// use ketch_store::etcd::EtcdConfig;
///
/// let config = EtcdConfig::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379"])
///     .prefix("/prod/")
///     .request_timeout(Duration::from_secs(3))
///     .credentials("ketch", "s3cret");
/// assert_eq!(config.endpoints().len(), 2);
/// ```
#[derive(Clone)]
pub struct EtcdConfig {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) watch_retry_timeout: Duration,
    pub(crate) keep_alive: Option<(Duration, Duration)>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) tls: Option<EtcdTls>,
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("watch_retry_timeout", &self.watch_retry_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl EtcdConfig {
    /// A configuration for the etcd members at `endpoints` (`http://host:port`,
    /// `https://host:port` or `host:port`), with the defaults: prefix
    /// [`DEFAULT_PREFIX`], 5 s per operation, 5 s to connect, watches that
    /// retry a lost connection for 60 s, HTTP/2 keep-alive every 10 s.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]);
    /// assert_eq!(config.key_prefix(), "/ketch/");
    /// ```
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: DEFAULT_PREFIX.to_string(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            watch_retry_timeout: Duration::from_secs(60),
            keep_alive: Some((Duration::from_secs(10), Duration::from_secs(5))),
            credentials: None,
            tls: None,
        }
    }

    /// Keeps every key under `prefix`, so that several clusters can share one
    /// etcd. The prefix starts with `/`, its segments use ASCII letters,
    /// digits, `-`, `_` and `.`, and a missing trailing `/` is added: store
    /// key `k` lives at etcd key `{prefix}{k}`. Prefixes of clusters sharing
    /// an etcd must not be nested in one another.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]).prefix("/clusters/eu-1");
    /// assert_eq!(config.key_prefix(), "/clusters/eu-1");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Deadline of each operation (`get`, `create`, one list page, ...),
    /// including waiting for a reachable member. Past it the operation fails
    /// `Unavailable`; a write that timed out may or may not have been applied.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]).request_timeout(Duration::from_secs(2));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Deadline of [`EtcdStore::connect`](super::EtcdStore::connect), which
    /// checks that the cluster answers a linearizable read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]).connect_timeout(Duration::from_secs(10));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a watch keeps trying to re-establish itself after losing its
    /// member before it ends with `Unavailable`. While it retries, it resumes
    /// from the last delivered revision, so no event is lost or repeated.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]).watch_retry_timeout(Duration::from_secs(300));
    /// ```
    pub fn watch_retry_timeout(mut self, timeout: Duration) -> Self {
        self.watch_retry_timeout = timeout;
        self
    }

    /// HTTP/2 keep-alive pings every `interval` on connections with open
    /// requests or watches, dropping a connection that does not answer within
    /// `timeout`; `None` turns them off. etcd refuses pings more often than
    /// every 5 s by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"])
    ///     .keep_alive(Some((Duration::from_secs(30), Duration::from_secs(10))));
    /// ```
    pub fn keep_alive(mut self, keep_alive: Option<(Duration, Duration)>) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Authenticates as `user` with `password` (etcd's auth must be enabled).
    ///
    /// ```
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// let config = EtcdConfig::new(["127.0.0.1:2379"]).credentials("ketch", "s3cret");
    /// ```
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Talks TLS to the members (endpoints must then be `https://` or bare
    /// `host:port`).
    ///
    /// ```
    /// use ketch_store::etcd::{EtcdConfig, EtcdTls};
    ///
    /// let ca = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
    /// let config = EtcdConfig::new(["https://etcd-0:2379"]).tls(EtcdTls::new(ca));
    /// ```
    pub fn tls(mut self, tls: EtcdTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The configured endpoints.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// assert_eq!(EtcdConfig::new(["a:1"]).endpoints(), ["a:1"]);
    /// ```
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The configured key prefix, as given (`connect` normalizes it).
    ///
    /// ```
    /// use ketch_store::etcd::EtcdConfig;
    ///
    /// assert_eq!(EtcdConfig::new(["a:1"]).prefix("/x").key_prefix(), "/x");
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Checks every option; returns the normalized prefix.
    pub(crate) fn validate(&self) -> Result<String, ConnectError> {
        if self.endpoints.is_empty() {
            return Err(ConnectError::NoEndpoints);
        }
        for endpoint in &self.endpoints {
            validate_endpoint(endpoint, self.tls.is_some())?;
        }
        for (option, value) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConnectError::InvalidOption {
                    option,
                    reason: "must be greater than zero".to_string(),
                });
            }
        }
        if let Some((interval, timeout)) = self.keep_alive
            && (interval.is_zero() || timeout.is_zero())
        {
            return Err(ConnectError::InvalidOption {
                option: "keep_alive",
                reason: "interval and timeout must be greater than zero".to_string(),
            });
        }
        if let Some((user, _)) = &self.credentials
            && user.is_empty()
        {
            return Err(ConnectError::InvalidOption {
                option: "credentials",
                reason: "the user name is empty".to_string(),
            });
        }
        normalize_prefix(&self.prefix)
    }
}

/// TLS settings for talking to etcd members: the CA that signed their
/// certificates and, for clusters that require client certificates, this
/// client's certificate and key. All in PEM.
#[derive(Clone)]
pub struct EtcdTls {
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain_name: Option<String>,
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem_len", &self.ca_pem.len())
            .field("client_identity", &self.identity.is_some())
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

impl EtcdTls {
    /// Trusts member certificates signed by the CA in `ca_pem`.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdTls;
    ///
    /// let tls = EtcdTls::new(b"-----BEGIN CERTIFICATE-----\n...".to_vec());
    /// ```
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        EtcdTls {
            ca_pem: ca_pem.into(),
            identity: None,
            domain_name: None,
        }
    }

    /// Presents this client certificate and private key (PEM) to the members.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdTls;
    ///
    /// let tls = EtcdTls::new(b"ca".to_vec()).client_identity(b"cert".to_vec(), b"key".to_vec());
    /// ```
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Checks the members' certificates against `name` instead of the
    /// endpoint's host.
    ///
    /// ```
    /// use ketch_store::etcd::EtcdTls;
    ///
    /// let tls = EtcdTls::new(b"ca".to_vec()).domain_name("etcd.internal");
    /// ```
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }
}

/// Why [`EtcdStore::connect`](super::EtcdStore::connect) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The configuration lists no endpoint.
    #[error("no etcd endpoints configured")]
    NoEndpoints,
    /// An endpoint is not `http://host:port`, `https://host:port` or `host:port`,
    /// or its scheme does not match the TLS setting.
    #[error("invalid etcd endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key prefix has the wrong format.
    #[error("invalid key prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as configured.
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another option has a value that cannot work.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS certificates or keys could not be used.
    #[error("invalid TLS configuration: {0}")]
    InvalidTls(String),
    /// The cluster refused the credentials or the user's permissions.
    #[error("etcd refused the credentials: {0}")]
    AuthFailed(String),
    /// No member answered a linearizable read before the connect deadline
    /// (members down, wrong address, no quorum, TLS handshake failure).
    #[error("etcd cluster at {endpoints:?} is unreachable: {cause}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// The last failure seen.
        cause: String,
    },
}

/// Checks one endpoint's shape and that its scheme agrees with the TLS setting.
fn validate_endpoint(endpoint: &str, tls: bool) -> Result<(), ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, endpoint),
    };
    match (scheme, tls) {
        (Some("http"), true) => {
            return Err(invalid("TLS is configured, use https:// or host:port"));
        }
        (Some("https"), false) => {
            return Err(invalid("https:// needs the TLS option (EtcdConfig::tls)"));
        }
        (Some("http" | "https") | None, _) => {}
        (Some(_), _) => return Err(invalid("the scheme must be http:// or https://")),
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(invalid("an endpoint has no path"));
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(invalid("expected host:port"));
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the host is empty or has blanks"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(invalid("the port must be a number from 1 to 65535")),
    }
}

/// Checks a key prefix and returns it with a trailing `/`.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String, ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidPrefix {
        prefix: prefix.to_string(),
        reason: reason.to_string(),
    };
    if !prefix.starts_with('/') {
        return Err(invalid("it must start with '/', for example \"/ketch/\""));
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(invalid("it is longer than 256 bytes"));
    }
    let inner = prefix[1..].strip_suffix('/').unwrap_or(&prefix[1..]);
    if !inner.is_empty() {
        for segment in inner.split('/') {
            if segment.is_empty() {
                return Err(invalid("it has an empty segment (\"//\")"));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("it has a \".\" or \"..\" segment"));
            }
            if let Some(c) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            {
                return Err(invalid(&format!(
                    "{c:?} is not allowed; segments use ASCII letters, digits, '-', '_' and '.'"
                )));
            }
        }
    }
    let mut normalized = prefix.to_string();
    if !normalized.ends_with('/') {
        normalized.push('/');
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized_or_rejected_with_a_reason() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/ketch/", Some("/ketch/")),
            ("/ketch", Some("/ketch/")),
            ("/", Some("/")),
            ("/a/b-c/d_e.f", Some("/a/b-c/d_e.f/")),
            ("", None),
            ("ketch/", None),
            ("/a//b", None),
            ("/a/../b", None),
            ("/a b", None),
            ("/a\0", None),
            ("/caf\u{e9}", None),
        ];
        for (input, expected) in cases {
            let got = normalize_prefix(input);
            match expected {
                Some(want) => assert_eq!(got.as_deref(), Ok(*want), "prefix {input:?}"),
                None => assert!(
                    matches!(got, Err(ConnectError::InvalidPrefix { .. })),
                    "prefix {input:?} gave {got:?}"
                ),
            }
        }
        assert!(normalize_prefix(&format!("/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn endpoints_are_checked_against_the_tls_setting() {
        let cases: &[(&str, bool, bool)] = &[
            ("http://127.0.0.1:2379", false, true),
            ("127.0.0.1:2379", false, true),
            ("localhost:2379/", false, true),
            ("https://etcd:2379", true, true),
            ("etcd:2379", true, true),
            ("https://etcd:2379", false, false),
            ("http://etcd:2379", true, false),
            ("grpc://etcd:2379", false, false),
            ("etcd", false, false),
            ("etcd:0", false, false),
            ("etcd:99999", false, false),
            (":2379", false, false),
            ("http://etcd:2379/v3", false, false),
        ];
        for (endpoint, tls, ok) in cases {
            let got = validate_endpoint(endpoint, *tls);
            assert_eq!(got.is_ok(), *ok, "endpoint {endpoint:?} tls {tls}: {got:?}");
        }
    }

    #[test]
    fn validate_reports_the_first_bad_option() {
        let none: [&str; 0] = [];
        assert_eq!(
            EtcdConfig::new(none).validate(),
            Err(ConnectError::NoEndpoints)
        );
        let zero = EtcdConfig::new(["a:1"]).request_timeout(Duration::ZERO);
        assert!(matches!(
            zero.validate(),
            Err(ConnectError::InvalidOption {
                option: "request_timeout",
                ..
            })
        ));
        let user = EtcdConfig::new(["a:1"]).credentials("", "pw");
        assert!(matches!(
            user.validate(),
            Err(ConnectError::InvalidOption {
                option: "credentials",
                ..
            })
        ));
        assert_eq!(
            EtcdConfig::new(["a:1"]).prefix("/p").validate(),
            Ok("/p/".to_string())
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = EtcdConfig::new(["a:1"]).credentials("alice", "hunter2");
        let shown = format!("{config:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
    }
}
