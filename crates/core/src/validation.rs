//! Validation of objects, with field paths in every error.
//!
//! Three layers, each usable alone:
//!
//! - checks of single strings ([`check_dns1123_label`],
//!   [`check_qualified_name`], [`check_label_value`], ...) that return a
//!   static explanation;
//! - building blocks that add [`FieldError`]s under a [`FieldPath`] to a
//!   [`ValidationErrors`] ([`validate_object_meta`], [`validate_pod_spec`],
//!   [`validate_label_selector`], [`validate_quantity`], ...), for kinds of
//!   your own that embed the built-in types;
//! - one validator per built-in kind (`validate_pod`, `validate_deployment`,
//!   ...; also as the [`Validate`] trait), and [`validate_object`] for an
//!   object of any kind.
//!
//! ```
//! use ketch_core::{api::Deployment, validation::Validate};
//! let d: Deployment = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web", "namespace": "default"},
//!     "spec": {
//!         "selector": {"matchLabels": {"app": "web"}},
//!         "template": {
//!             "metadata": {"labels": {"app": "web"}},
//!             "spec": {"containers": [
//!                 {"name": "web", "image": "nginx"},
//!                 {"name": "sidecar", "image": "envoy", "resources": {"requests": {"cpu": "1.5.0"}}}
//!             ]}
//!         }
//!     }
//! })).unwrap();
//! assert_eq!(
//!     d.validate().unwrap_err().to_string(),
//!     r#"spec.template.spec.containers[1].resources.requests.cpu: invalid quantity "1.5.0""#
//! );
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use crate::api::{
    Affinity, Container, Deployment, DeploymentStrategyType, Endpoints, Event, Lease, Namespace,
    Node, NodeSelectorOperator, NodeSelectorTerm, Pod, PodAffinityTerm, PodSpec, PodTemplateSpec,
    Probe, ReplicaSet, ResourceRequirements, RestartPolicy, Service, ServiceType, TaintEffect,
    Toleration, TolerationOperator, TopologySpreadConstraint, UnsatisfiableConstraintAction,
    WeightedPodAffinityTerm,
};
use crate::quantity::{ParsedQuantity, QuantityError};
use crate::selector::{Selector, SelectorError};
use crate::{
    ApiResource, IntOrString, LabelSelector, LabelSelectorOperator, Object, ObjectMeta, Quantity,
};

/// A check of a single string, such as [`check_dns1123_label`]: `Err`
/// holds the explanation.
pub type NameCheck = fn(&str) -> Result<(), &'static str>;

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest name part of a qualified name, and longest label value.
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit.
fn is_dns_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// Checks a DNS-1123 label (RFC 1123): at most 63 lower-case alphanumeric
/// characters or `-`, starting and ending with an alphanumeric character.
/// Names of namespaces, containers and most label-like names are labels.
///
/// ```
/// use ketch_core::validation::check_dns1123_label;
/// assert!(check_dns1123_label("my-name").is_ok());
/// assert!(check_dns1123_label("my.name").is_err());
/// ```
pub fn check_dns1123_label(s: &str) -> Result<(), &'static str> {
    if s.len() > DNS1123_LABEL_MAX_LENGTH {
        return Err("must be no more than 63 characters");
    }
    if !is_dns_label_shape(s) {
        return Err(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Dot-separated `[a-z0-9]([-a-z0-9]*[a-z0-9])?` labels, in one pass over
/// the bytes.
fn is_dns_subdomain_shape(s: &str) -> bool {
    // The byte before the first is taken as a dot: a label starts there.
    let mut prev = b'.';
    for &c in s.as_bytes() {
        let ok = match c {
            b'a'..=b'z' | b'0'..=b'9' => true,
            b'-' => prev != b'.',
            b'.' => is_lower_alnum(prev),
            _ => false,
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    is_lower_alnum(prev)
}

/// Checks a DNS-1123 subdomain: at most 253 characters, dot-separated
/// DNS-1123 labels. Names of most objects (pods, deployments, nodes) are
/// subdomains.
///
/// ```
/// use ketch_core::validation::check_dns1123_subdomain;
/// assert!(check_dns1123_subdomain("example.com").is_ok());
/// assert!(check_dns1123_subdomain("-a.com").is_err());
/// ```
pub fn check_dns1123_subdomain(s: &str) -> Result<(), &'static str> {
    if s.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        return Err("must be no more than 253 characters");
    }
    if !is_dns_subdomain_shape(s) {
        return Err(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Checks a DNS-1035 label: like a DNS-1123 label but starting with a
/// letter. Service names are DNS-1035 labels.
///
/// ```
/// use ketch_core::validation::check_dns1035_label;
/// assert!(check_dns1035_label("web").is_ok());
/// assert!(check_dns1035_label("1web").is_err());
/// ```
pub fn check_dns1035_label(s: &str) -> Result<(), &'static str> {
    if s.len() > DNS1123_LABEL_MAX_LENGTH {
        return Err("must be no more than 63 characters");
    }
    if !is_dns_label_shape(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        return Err(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_name_part_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Checks a qualified name such as a label key or annotation key: an
/// optional DNS-1123 subdomain prefix and `/`, then a name of at most 63
/// alphanumeric characters, `-`, `_` or `.`, starting and ending with an
/// alphanumeric character.
///
/// ```
/// use ketch_core::validation::check_qualified_name;
/// assert!(check_qualified_name("app.kubernetes.io/name").is_ok());
/// assert!(check_qualified_name("Tier").is_ok());
/// assert!(check_qualified_name("a/b/c").is_err());
/// ```
pub fn check_qualified_name(s: &str) -> Result<(), &'static str> {
    let name = match s.bytes().position(|c| c == b'/') {
        Some(slash) => {
            let (prefix, name) = (&s[..slash], &s[slash + 1..]);
            if prefix.is_empty() {
                return Err("prefix part must be non-empty");
            }
            if check_dns1123_subdomain(prefix).is_err() {
                return Err("prefix part must be a lowercase RFC 1123 subdomain");
            }
            name
        }
        None => s,
    };
    if name.is_empty() {
        return Err("name part must be non-empty");
    }
    if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        return Err("name part must be no more than 63 characters");
    }
    if !is_name_part_shape(name) {
        return Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 alphanumeric characters, `-`,
/// `_` or `.`, starting and ending with an alphanumeric character.
///
/// ```
/// use ketch_core::validation::check_label_value;
/// assert!(check_label_value("").is_ok());
/// assert!(check_label_value("v1.2_3").is_ok());
/// assert!(check_label_value("a b").is_err());
/// ```
pub fn check_label_value(s: &str) -> Result<(), &'static str> {
    if s.len() > QUALIFIED_NAME_MAX_LENGTH {
        return Err("must be no more than 63 characters");
    }
    if !s.is_empty() && !is_name_part_shape(s) {
        return Err(
            "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Checks an IANA service name, the form of container port names: at most
/// 15 lower-case alphanumeric characters or `-`, with at least one letter,
/// no leading, trailing or doubled `-`.
///
/// ```
/// use ketch_core::validation::check_port_name;
/// assert!(check_port_name("http").is_ok());
/// assert!(check_port_name("8080").is_err());
/// ```
pub fn check_port_name(s: &str) -> Result<(), &'static str> {
    if s.len() > 15 {
        return Err("must be no more than 15 characters");
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| is_lower_alnum(c) || c == b'-') {
        return Err("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if s.contains("--") {
        return Err("must not contain consecutive hyphens");
    }
    if !b.iter().any(u8::is_ascii_lowercase) {
        return Err("must contain at least one letter (a-z)");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("must not begin or end with a hyphen");
    }
    Ok(())
}

/// Checks an environment variable name: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
///
/// ```
/// use ketch_core::validation::check_env_var_name;
/// assert!(check_env_var_name("JAVA_OPTS").is_ok());
/// assert!(check_env_var_name("1X").is_err());
/// ```
pub fn check_env_var_name(s: &str) -> Result<(), &'static str> {
    let ok = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
    match s.as_bytes() {
        [first, rest @ ..] if !first.is_ascii_digit() && ok(first) && rest.iter().all(ok) => Ok(()),
        _ => Err(
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
        ),
    }
}

/// A path to a field, built the way the fields nest:
/// `spec.template.spec.containers[1].resources.requests.cpu`.
///
/// ```
/// use ketch_core::validation::FieldPath;
/// let p = FieldPath::new("spec").child("containers").index(1).child("image");
/// assert_eq!(p.to_string(), "spec.containers[1].image");
/// assert_eq!(FieldPath::new("metadata").child("labels").key("app").as_str(), "metadata.labels[app]");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// The empty path (the object itself).
    pub fn root() -> Self {
        Self::default()
    }

    /// A path of one field name.
    pub fn new(name: &str) -> Self {
        Self(name.to_string())
    }

    /// The path of a field inside this one.
    pub fn child(&self, name: &str) -> Self {
        let mut s = String::with_capacity(self.0.len() + name.len() + 1);
        s.push_str(&self.0);
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(name);
        Self(s)
    }

    /// The path of a list element.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// The path of a map entry.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "<root>" } else { &self.0 })
    }
}

/// A field path under construction: a chain of segments borrowed from the
/// callers' stack frames, written out as a [`FieldPath`] only when a problem
/// is recorded there. Valid objects are checked without building any path.
#[derive(Clone, Copy, Debug)]
enum Path<'a> {
    /// The empty path (the object itself).
    Root,
    /// A path given by the caller.
    Base(&'a FieldPath),
    /// A field inside the parent.
    Child(&'a Path<'a>, &'a str),
    /// A list element of the parent.
    Index(&'a Path<'a>, usize),
}

/// A path of one field name under the root.
fn top(name: &'static str) -> Path<'static> {
    Path::Child(&Path::Root, name)
}

impl<'a> Path<'a> {
    /// The path of a field inside this one.
    fn child(&'a self, name: &'a str) -> Path<'a> {
        Path::Child(self, name)
    }

    /// The path of a list element.
    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    /// The path as [`FieldPath`] builds it segment by segment.
    fn build(&self) -> FieldPath {
        let mut s = String::new();
        self.write(&mut s);
        FieldPath(s)
    }

    fn write(&self, s: &mut String) {
        match *self {
            Path::Root => {}
            Path::Base(p) => s.push_str(&p.0),
            Path::Child(parent, name) => {
                parent.write(s);
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(name);
            }
            Path::Index(parent, i) => {
                use fmt::Write as _;
                parent.write(s);
                let _ = write!(s, "[{i}]");
            }
        }
    }
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldErrorKind {
    /// A required field is missing.
    #[error("Required value{}", with_colon(.detail))]
    Required {
        /// Extra explanation, possibly empty.
        detail: String,
    },
    /// A field has a bad value.
    #[error("Invalid value: {value}: {detail}")]
    Invalid {
        /// The value, rendered (strings quoted).
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A quantity does not parse.
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    /// A selector does not parse.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// A value that must be unique is repeated.
    #[error("Duplicate value: {value}")]
    Duplicate {
        /// The value, rendered.
        value: String,
    },
    /// A value is not one of the supported ones.
    #[error("Unsupported value: {value}: supported values: {}", quoted_list(.supported))]
    NotSupported {
        /// The value, rendered.
        value: String,
        /// The supported values.
        supported: Vec<String>,
    },
    /// A field may not be set (in this context).
    #[error("Forbidden: {detail}")]
    Forbidden {
        /// Why.
        detail: String,
    },
}

fn with_colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One invalid field: `<path>: <problem>`.
///
/// ```
/// use ketch_core::validation::{FieldError, FieldPath};
/// let e = FieldError::required(&FieldPath::new("spec").child("containers"), "");
/// assert_eq!(e.to_string(), "spec.containers: Required value");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct FieldError {
    /// Where.
    pub path: FieldPath,
    /// What.
    pub kind: FieldErrorKind,
}

impl FieldError {
    /// A missing required field, with an optional explanation.
    pub fn required(path: &FieldPath, detail: &str) -> Self {
        Self {
            path: path.clone(),
            kind: FieldErrorKind::Required {
                detail: detail.to_string(),
            },
        }
    }

    /// A bad value: `value` is rendered with `Debug` (strings quoted).
    pub fn invalid(path: &FieldPath, value: impl fmt::Debug, detail: impl fmt::Display) -> Self {
        Self {
            path: path.clone(),
            kind: FieldErrorKind::Invalid {
                value: format!("{value:?}"),
                detail: detail.to_string(),
            },
        }
    }

    /// A repeated value.
    pub fn duplicate(path: &FieldPath, value: impl fmt::Debug) -> Self {
        Self {
            path: path.clone(),
            kind: FieldErrorKind::Duplicate {
                value: format!("{value:?}"),
            },
        }
    }

    /// A value outside the supported set.
    pub fn not_supported(path: &FieldPath, value: impl fmt::Debug, supported: &[&str]) -> Self {
        Self {
            path: path.clone(),
            kind: FieldErrorKind::NotSupported {
                value: format!("{value:?}"),
                supported: supported.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    /// A field that may not be set.
    pub fn forbidden(path: &FieldPath, detail: impl fmt::Display) -> Self {
        Self {
            path: path.clone(),
            kind: FieldErrorKind::Forbidden {
                detail: detail.to_string(),
            },
        }
    }
}

/// Every problem found in an object; `Display` writes them separated by
/// `; `.
///
/// ```
/// use ketch_core::validation::{FieldPath, ValidationErrors};
/// let mut errs = ValidationErrors::default();
/// errs.required(&FieldPath::new("metadata").child("name"), "");
/// errs.invalid(&FieldPath::new("spec").child("replicas"), -1, "must be greater than or equal to 0");
/// assert_eq!(
///     errs.to_string(),
///     "metadata.name: Required value; spec.replicas: Invalid value: -1: must be greater than or equal to 0"
/// );
/// assert!(errs.into_result().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_errors(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    /// True when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Adds a problem.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// `Ok(())` when empty, `Err(self)` otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Adds [`FieldError::required`].
    pub fn required(&mut self, path: &FieldPath, detail: &str) {
        self.push(FieldError::required(path, detail));
    }

    /// Adds [`FieldError::invalid`].
    pub fn invalid(&mut self, path: &FieldPath, value: impl fmt::Debug, detail: impl fmt::Display) {
        self.push(FieldError::invalid(path, value, detail));
    }

    /// Adds [`FieldError::duplicate`].
    pub fn duplicate(&mut self, path: &FieldPath, value: impl fmt::Debug) {
        self.push(FieldError::duplicate(path, value));
    }

    /// Adds [`FieldError::not_supported`].
    pub fn not_supported(&mut self, path: &FieldPath, value: impl fmt::Debug, supported: &[&str]) {
        self.push(FieldError::not_supported(path, value, supported));
    }

    /// Adds [`FieldError::forbidden`].
    pub fn forbidden(&mut self, path: &FieldPath, detail: impl fmt::Display) {
        self.push(FieldError::forbidden(path, detail));
    }

    /// Adds an `Invalid value` error when `check(value)` fails.
    pub fn check(&mut self, path: &FieldPath, value: &str, check: NameCheck) {
        if let Err(detail) = check(value) {
            self.invalid(path, value, detail);
        }
    }

    fn required_at(&mut self, path: &Path<'_>, detail: &str) {
        self.required(&path.build(), detail);
    }

    fn invalid_at(&mut self, path: &Path<'_>, value: impl fmt::Debug, detail: impl fmt::Display) {
        self.invalid(&path.build(), value, detail);
    }

    fn duplicate_at(&mut self, path: &Path<'_>, value: impl fmt::Debug) {
        self.duplicate(&path.build(), value);
    }

    fn not_supported_at(&mut self, path: &Path<'_>, value: impl fmt::Debug, supported: &[&str]) {
        self.not_supported(&path.build(), value, supported);
    }

    fn forbidden_at(&mut self, path: &Path<'_>, detail: impl fmt::Display) {
        self.forbidden(&path.build(), detail);
    }

    fn check_at(&mut self, path: &Path<'_>, value: &str, check: NameCheck) {
        if let Err(detail) = check(value) {
            self.invalid_at(path, value, detail);
        }
    }

    fn non_negative(&mut self, path: &Path<'_>, value: Option<impl Into<i64> + Copy>) {
        if let Some(v) = value
            && v.into() < 0
        {
            self.invalid_at(path, v.into(), "must be greater than or equal to 0");
        }
    }

    fn positive(&mut self, path: &Path<'_>, value: Option<impl Into<i64> + Copy>) {
        if let Some(v) = value
            && v.into() <= 0
        {
            self.invalid_at(path, v.into(), "must be greater than 0");
        }
    }
}

/// Validates one of the built-in kinds (or a kind of your own).
///
/// ```
/// use ketch_core::{ObjectMeta, api::Namespace, validation::Validate};
/// let ns = Namespace { metadata: ObjectMeta::cluster_named("Team_A"), ..Namespace::default() };
/// assert_eq!(
///     ns.validate().unwrap_err().to_string(),
///     "metadata.name: Invalid value: \"Team_A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
/// );
/// ```
pub trait Validate {
    /// Every problem of the object, with field paths.
    fn validate(&self) -> Result<(), ValidationErrors>;
}

/// Validates metadata: the name (with `check_name`, or the `generateName`
/// prefix when the name is still empty), the namespace (required when
/// `namespaced`, forbidden otherwise), labels, annotations, owner references
/// and finalizers.
///
/// Namespaced objects must carry their namespace: callers that take it from
/// a request path set it before validating.
///
/// ```
/// use ketch_core::ObjectMeta;
/// use ketch_core::validation::{FieldPath, ValidationErrors, check_dns1123_subdomain, validate_object_meta};
/// let mut errs = ValidationErrors::default();
/// let meta = ObjectMeta::named("default", "web").with_label("app", "-web");
/// validate_object_meta(&meta, true, check_dns1123_subdomain, &FieldPath::new("metadata"), &mut errs);
/// assert!(errs.to_string().starts_with("metadata.labels: Invalid value: \"-web\": must be empty or consist of"));
/// ```
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    check_name: NameCheck,
    path: &FieldPath,
    errs: &mut ValidationErrors,
) {
    validate_object_meta_at(meta, namespaced, check_name, &Path::Base(path), errs)
}

fn validate_object_meta_at(
    meta: &ObjectMeta,
    namespaced: bool,
    check_name: NameCheck,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    match (meta.name(), meta.generate_name.as_deref().unwrap_or("")) {
        ("", "") => errs.required_at(&path.child("name"), "name or generateName is required"),
        ("", prefix) => {
            // The generated suffix is alphanumeric, so a trailing '-' is fine.
            let masked = match prefix.strip_suffix('-') {
                Some(p) => format!("{p}a"),
                None => prefix.to_string(),
            };
            if let Err(detail) = check_name(&masked) {
                errs.invalid_at(&path.child("generateName"), prefix, detail);
            }
        }
        (name, _) => errs.check_at(&path.child("name"), name, check_name),
    }
    match (namespaced, meta.namespace()) {
        (true, "") => errs.required_at(&path.child("namespace"), ""),
        (true, ns) => errs.check_at(&path.child("namespace"), ns, check_dns1123_label),
        (false, "") => {}
        (false, _) => errs.forbidden_at(
            &path.child("namespace"),
            "not allowed on this type (it is cluster-scoped)",
        ),
    }
    validate_labels_at(&meta.labels, &path.child("labels"), errs);
    let annotations = path.child("annotations");
    let mut total = 0;
    for (k, v) in &meta.annotations {
        errs.check_at(&annotations, k, check_qualified_name);
        total += k.len() + v.len();
    }
    if total > 256 * 1024 {
        errs.invalid_at(
            &annotations,
            format_args!("<{total} bytes>"),
            "must have at most 262144 bytes",
        );
    }
    let owners = path.child("ownerReferences");
    let mut controllers = 0;
    for (i, r) in meta.owner_references.iter().enumerate() {
        let p = owners.index(i);
        for (field, value) in [
            ("apiVersion", &r.api_version),
            ("kind", &r.kind),
            ("name", &r.name),
            ("uid", &r.uid),
        ] {
            if value.is_empty() {
                errs.required_at(&p.child(field), "");
            }
        }
        if r.controller == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        errs.invalid_at(
            &owners,
            format_args!("<{controllers} controllers>"),
            "only one reference can have controller set to true",
        );
    }
    let finalizers = path.child("finalizers");
    let mut seen = HashSet::new();
    for (i, f) in meta.finalizers.iter().enumerate() {
        errs.check_at(&finalizers.index(i), f, check_qualified_name);
        if !seen.insert(f.as_str()) {
            errs.duplicate_at(&finalizers.index(i), f);
        }
    }
}

/// Validates a label map: keys are qualified names, values label values.
pub fn validate_labels(
    labels: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut ValidationErrors,
) {
    validate_labels_at(labels, &Path::Base(path), errs)
}

fn validate_labels_at(
    labels: &BTreeMap<String, String>,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    for (k, v) in labels {
        errs.check_at(path, k, check_qualified_name);
        errs.check_at(path, v, check_label_value);
    }
}

/// Validates a [`LabelSelector`]: keys, values, and the values each
/// operator needs (`In`/`NotIn` at least one, `Exists`/`DoesNotExist`
/// none).
///
/// ```
/// use ketch_core::{LabelSelector, LabelSelectorOperator, LabelSelectorRequirement};
/// use ketch_core::validation::{FieldPath, ValidationErrors, validate_label_selector};
/// let sel = LabelSelector {
///     match_expressions: vec![LabelSelectorRequirement {
///         key: "env".into(), operator: LabelSelectorOperator::In, values: vec![],
///     }],
///     ..Default::default()
/// };
/// let mut errs = ValidationErrors::default();
/// validate_label_selector(&sel, &FieldPath::new("spec").child("selector"), &mut errs);
/// assert_eq!(
///     errs.to_string(),
///     "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
/// );
/// ```
pub fn validate_label_selector(sel: &LabelSelector, path: &FieldPath, errs: &mut ValidationErrors) {
    validate_label_selector_at(sel, &Path::Base(path), errs)
}

fn validate_label_selector_at(sel: &LabelSelector, path: &Path<'_>, errs: &mut ValidationErrors) {
    validate_labels_at(&sel.match_labels, &path.child("matchLabels"), errs);
    let exprs = path.child("matchExpressions");
    for (i, r) in sel.match_expressions.iter().enumerate() {
        let p = exprs.index(i);
        errs.check_at(&p.child("key"), &r.key, check_qualified_name);
        let values = p.child("values");
        match r.operator {
            LabelSelectorOperator::In | LabelSelectorOperator::NotIn => {
                if r.values.is_empty() {
                    errs.required_at(
                        &values,
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
                for (j, v) in r.values.iter().enumerate() {
                    errs.check_at(&values.index(j), v, check_label_value);
                }
            }
            LabelSelectorOperator::Exists | LabelSelectorOperator::DoesNotExist => {
                if !r.values.is_empty() {
                    errs.forbidden_at(
                        &values,
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
        }
    }
}

/// Validates the string form of a label selector.
///
/// ```
/// use ketch_core::validation::{FieldPath, ValidationErrors, validate_selector_string};
/// let mut errs = ValidationErrors::default();
/// validate_selector_string("app in web", &FieldPath::new("labelSelector"), &mut errs);
/// assert_eq!(
///     errs.to_string(),
///     "labelSelector: invalid selector: unexpected \"web\" at position 7, expected '('"
/// );
/// ```
pub fn validate_selector_string(s: &str, path: &FieldPath, errs: &mut ValidationErrors) {
    validate_selector_string_at(s, &Path::Base(path), errs)
}

fn validate_selector_string_at(s: &str, path: &Path<'_>, errs: &mut ValidationErrors) {
    if let Err(e) = Selector::parse(s) {
        errs.push(FieldError {
            path: path.build(),
            kind: e.into(),
        });
    }
}

/// Validates a quantity and returns its value, or records the problem.
///
/// ```
/// use ketch_core::Quantity;
/// use ketch_core::validation::{FieldPath, ValidationErrors, validate_quantity};
/// let mut errs = ValidationErrors::default();
/// let path = FieldPath::new("spec").child("template").child("spec").child("containers").index(1)
///     .child("resources").child("requests").child("cpu");
/// assert_eq!(validate_quantity(&Quantity::from("1.5.0"), &path, &mut errs), None);
/// assert_eq!(
///     errs.to_string(),
///     r#"spec.template.spec.containers[1].resources.requests.cpu: invalid quantity "1.5.0""#
/// );
/// ```
pub fn validate_quantity(
    q: &Quantity,
    path: &FieldPath,
    errs: &mut ValidationErrors,
) -> Option<ParsedQuantity> {
    validate_quantity_at(q, &Path::Base(path), errs)
}

fn validate_quantity_at(
    q: &Quantity,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) -> Option<ParsedQuantity> {
    match q.parse() {
        Ok(p) => Some(p),
        Err(e) => {
            errs.push(FieldError {
                path: path.build(),
                kind: e.into(),
            });
            None
        }
    }
}

/// Resource names Kubernetes defines without a domain prefix.
const STANDARD_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage", "storage", "pods"];

/// Validates a resource list (`requests`, `limits`, `capacity`): names are
/// standard (`cpu`, `memory`, `ephemeral-storage`, `storage`, `pods`,
/// `hugepages-<size>`) or domain-qualified (`example.com/gpu`); quantities
/// parse and are not negative; domain-qualified (extended) resources are
/// whole numbers. Returns the parsed quantities of the valid entries.
pub fn validate_resource_list<'a>(
    list: &'a BTreeMap<String, Quantity>,
    path: &FieldPath,
    errs: &mut ValidationErrors,
) -> Vec<(&'a str, ParsedQuantity)> {
    validate_resource_list_at(list, &Path::Base(path), errs)
}

fn validate_resource_list_at<'a>(
    list: &'a BTreeMap<String, Quantity>,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) -> Vec<(&'a str, ParsedQuantity)> {
    let mut parsed = Vec::with_capacity(list.len());
    for (name, q) in list {
        let p = path.child(name);
        if name.contains('/') {
            errs.check_at(&p, name, check_qualified_name);
        } else if !STANDARD_RESOURCES.contains(&name.as_str()) && !name.starts_with("hugepages-") {
            errs.invalid_at(
                &p,
                name,
                "must be a standard resource type or fully qualified",
            );
            continue;
        }
        let Some(v) = validate_quantity_at(q, &p, errs) else {
            continue;
        };
        if v.nanos() < 0 {
            errs.invalid_at(&p, &q.0, "must be greater than or equal to 0");
        } else if name.contains('/') && v.nanos() % 1_000_000_000 != 0 {
            errs.invalid_at(&p, &q.0, "must be a whole number for extended resources");
        } else {
            parsed.push((name.as_str(), v));
        }
    }
    parsed
}

/// Validates requests and limits, and that no request exceeds its limit.
pub fn validate_resource_requirements(
    r: &ResourceRequirements,
    path: &FieldPath,
    errs: &mut ValidationErrors,
) {
    validate_resource_requirements_at(r, &Path::Base(path), errs)
}

fn validate_resource_requirements_at(
    r: &ResourceRequirements,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let requests = validate_resource_list_at(&r.requests, &path.child("requests"), errs);
    let limits = validate_resource_list_at(&r.limits, &path.child("limits"), errs);
    for (name, request) in &requests {
        if let Some((_, limit)) = limits.iter().find(|(n, _)| n == name)
            && request.nanos() > limit.nanos()
        {
            errs.invalid_at(
                &path.child("requests").child(name),
                &r.requests[*name].0,
                format_args!(
                    "must be less than or equal to {name} limit of {}",
                    r.limits[*name]
                ),
            );
        }
    }
}

/// Validates a port given as a number (1-65535) or a port name.
fn validate_port_ref(port: &IntOrString, path: &Path<'_>, errs: &mut ValidationErrors) {
    match port {
        IntOrString::Int(n) => validate_port_number(*n, path, errs),
        IntOrString::String(s) => errs.check_at(path, s, check_port_name),
    }
}

fn validate_port_number(n: i32, path: &Path<'_>, errs: &mut ValidationErrors) {
    if !(1..=65535).contains(&n) {
        errs.invalid_at(path, n, "must be between 1 and 65535, inclusive");
    }
}

fn validate_probe(
    probe: &Probe,
    liveness_or_startup: bool,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let handlers = usize::from(probe.exec.is_some())
        + usize::from(probe.http_get.is_some())
        + usize::from(probe.tcp_socket.is_some());
    match handlers {
        0 => errs.required_at(path, "must specify a handler type"),
        1 => {}
        _ => errs.forbidden_at(path, "may not specify more than 1 handler type"),
    }
    if let Some(exec) = &probe.exec
        && exec.command.is_empty()
    {
        errs.required_at(&path.child("exec").child("command"), "");
    }
    if let Some(h) = &probe.http_get {
        validate_port_ref(&h.port, &path.child("httpGet").child("port"), errs);
    }
    if let Some(t) = &probe.tcp_socket {
        validate_port_ref(&t.port, &path.child("tcpSocket").child("port"), errs);
    }
    errs.non_negative(
        &path.child("initialDelaySeconds"),
        probe.initial_delay_seconds,
    );
    errs.non_negative(&path.child("timeoutSeconds"), probe.timeout_seconds);
    errs.non_negative(&path.child("periodSeconds"), probe.period_seconds);
    errs.non_negative(&path.child("successThreshold"), probe.success_threshold);
    errs.non_negative(&path.child("failureThreshold"), probe.failure_threshold);
    errs.positive(
        &path.child("terminationGracePeriodSeconds"),
        probe.termination_grace_period_seconds,
    );
    if liveness_or_startup && probe.success_threshold.is_some_and(|s| s != 1) {
        errs.invalid_at(
            &path.child("successThreshold"),
            probe.success_threshold.unwrap_or_default(),
            "must be 1",
        );
    }
}

fn validate_container<'c>(
    c: &'c Container,
    path: &Path<'_>,
    names: &mut HashSet<&'c str>,
    errs: &mut ValidationErrors,
) {
    if c.name.is_empty() {
        errs.required_at(&path.child("name"), "");
    } else {
        errs.check_at(&path.child("name"), &c.name, check_dns1123_label);
        if !names.insert(c.name.as_str()) {
            errs.duplicate_at(&path.child("name"), &c.name);
        }
    }
    if c.image.as_deref().unwrap_or("").trim().is_empty() {
        errs.required_at(&path.child("image"), "");
    }
    let ports = path.child("ports");
    let mut port_names = HashSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let pp = ports.index(i);
        validate_port_number(p.container_port, &pp.child("containerPort"), errs);
        if let Some(h) = p.host_port
            && h != 0
        {
            validate_port_number(h, &pp.child("hostPort"), errs);
        }
        if let Some(name) = &p.name {
            errs.check_at(&pp.child("name"), name, check_port_name);
            if !port_names.insert(name.as_str()) {
                errs.duplicate_at(&pp.child("name"), name);
            }
        }
        if let Some(ip) = &p.host_ip
            && ip.parse::<IpAddr>().is_err()
        {
            errs.invalid_at(&pp.child("hostIP"), ip, "must be a valid IP address");
        }
    }
    let env = path.child("env");
    for (i, e) in c.env.iter().enumerate() {
        let ep = env.index(i);
        if e.name.is_empty() {
            errs.required_at(&ep.child("name"), "");
        } else {
            errs.check_at(&ep.child("name"), &e.name, check_env_var_name);
        }
        if let Some(from) = &e.value_from {
            if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.invalid_at(
                    &ep.child("valueFrom"),
                    "",
                    "may not be specified when `value` is not empty",
                );
            }
            match &from.field_ref {
                None => errs.required_at(&ep.child("valueFrom").child("fieldRef"), ""),
                Some(f) if f.field_path.is_empty() => errs.required_at(
                    &ep.child("valueFrom").child("fieldRef").child("fieldPath"),
                    "",
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(r) = &c.resources {
        validate_resource_requirements_at(r, &path.child("resources"), errs);
    }
    if let Some(p) = &c.liveness_probe {
        validate_probe(p, true, &path.child("livenessProbe"), errs);
    }
    if let Some(p) = &c.readiness_probe {
        validate_probe(p, false, &path.child("readinessProbe"), errs);
    }
    if let Some(p) = &c.startup_probe {
        validate_probe(p, true, &path.child("startupProbe"), errs);
    }
}

fn validate_node_selector_term(
    term: &NodeSelectorTerm,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let exprs = path.child("matchExpressions");
    for (i, r) in term.match_expressions.iter().enumerate() {
        let p = exprs.index(i);
        errs.check_at(&p.child("key"), &r.key, check_qualified_name);
        let values = p.child("values");
        match r.operator {
            NodeSelectorOperator::In | NodeSelectorOperator::NotIn => {
                if r.values.is_empty() {
                    errs.required_at(
                        &values,
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
                for (j, v) in r.values.iter().enumerate() {
                    errs.check_at(&values.index(j), v, check_label_value);
                }
            }
            NodeSelectorOperator::Exists | NodeSelectorOperator::DoesNotExist => {
                if !r.values.is_empty() {
                    errs.forbidden_at(
                        &values,
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            NodeSelectorOperator::Gt | NodeSelectorOperator::Lt => match r.values.as_slice() {
                [v] if v.parse::<i64>().is_ok() => {}
                [v] => errs.invalid_at(&values.index(0), v, "must be an integer"),
                _ => errs.required_at(
                    &values,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ),
            },
        }
    }
    let fields = path.child("matchFields");
    for (i, r) in term.match_fields.iter().enumerate() {
        let p = fields.index(i);
        if r.key != "metadata.name" {
            errs.not_supported_at(&p.child("key"), &r.key, &["metadata.name"]);
        }
        if !matches!(
            r.operator,
            NodeSelectorOperator::In | NodeSelectorOperator::NotIn
        ) {
            errs.not_supported_at(&p.child("operator"), r.operator, &["In", "NotIn"]);
        } else if r.values.len() != 1 {
            errs.required_at(
                &p.child("values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            );
        }
    }
}

fn validate_weight(weight: i32, path: &Path<'_>, errs: &mut ValidationErrors) {
    if !(1..=100).contains(&weight) {
        errs.invalid_at(path, weight, "must be in the range 1-100");
    }
}

fn validate_pod_affinity_term(
    term: &PodAffinityTerm,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    if term.topology_key.is_empty() {
        errs.required_at(&path.child("topologyKey"), "can not be empty");
    } else {
        errs.check_at(
            &path.child("topologyKey"),
            &term.topology_key,
            check_qualified_name,
        );
    }
    if let Some(s) = &term.label_selector {
        validate_label_selector_at(s, &path.child("labelSelector"), errs);
    }
    if let Some(s) = &term.namespace_selector {
        validate_label_selector_at(s, &path.child("namespaceSelector"), errs);
    }
    for (i, ns) in term.namespaces.iter().enumerate() {
        errs.check_at(&path.child("namespaces").index(i), ns, check_dns1123_label);
    }
}

fn validate_pod_affinity_terms(
    required: &[PodAffinityTerm],
    preferred: &[WeightedPodAffinityTerm],
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let req = path.child("requiredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in required.iter().enumerate() {
        validate_pod_affinity_term(t, &req.index(i), errs);
    }
    let pref = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, t) in preferred.iter().enumerate() {
        validate_weight(t.weight, &pref.index(i).child("weight"), errs);
        validate_pod_affinity_term(
            &t.pod_affinity_term,
            &pref.index(i).child("podAffinityTerm"),
            errs,
        );
    }
}

fn validate_affinity(a: &Affinity, path: &Path<'_>, errs: &mut ValidationErrors) {
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let required = p.child("requiredDuringSchedulingIgnoredDuringExecution");
            let rp = required.child("nodeSelectorTerms");
            if req.node_selector_terms.is_empty() {
                errs.required_at(&rp, "must have at least one node selector term");
            }
            for (i, t) in req.node_selector_terms.iter().enumerate() {
                validate_node_selector_term(t, &rp.index(i), errs);
            }
        }
        let pp = p.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            validate_weight(t.weight, &pp.index(i).child("weight"), errs);
            validate_node_selector_term(&t.preference, &pp.index(i).child("preference"), errs);
        }
    }
    if let Some(pa) = &a.pod_affinity {
        validate_pod_affinity_terms(
            &pa.required_during_scheduling_ignored_during_execution,
            &pa.preferred_during_scheduling_ignored_during_execution,
            &path.child("podAffinity"),
            errs,
        );
    }
    if let Some(pa) = &a.pod_anti_affinity {
        validate_pod_affinity_terms(
            &pa.required_during_scheduling_ignored_during_execution,
            &pa.preferred_during_scheduling_ignored_during_execution,
            &path.child("podAntiAffinity"),
            errs,
        );
    }
}

fn validate_toleration(t: &Toleration, path: &Path<'_>, errs: &mut ValidationErrors) {
    let key = t.key.as_deref().unwrap_or("");
    let exists = t.operator == Some(TolerationOperator::Exists);
    if !key.is_empty() {
        errs.check_at(&path.child("key"), key, check_qualified_name);
    } else if !exists {
        errs.invalid_at(
            &path.child("operator"),
            t.operator.unwrap_or_default(),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    let value = t.value.as_deref().unwrap_or("");
    if exists && !value.is_empty() {
        errs.invalid_at(
            &path.child("value"),
            value,
            "value must be empty when `operator` is 'Exists'",
        );
    } else if !exists {
        errs.check_at(&path.child("value"), value, check_label_value);
    }
    if t.toleration_seconds.is_some() && t.effect != Some(TaintEffect::NoExecute) {
        errs.invalid_at(
            &path.child("effect"),
            t.effect.map(|e| format!("{e:?}")).unwrap_or_default(),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        );
    }
}

fn validate_topology_spread(
    constraints: &[TopologySpreadConstraint],
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let mut seen = HashSet::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.invalid_at(&p.child("maxSkew"), c.max_skew, "must be greater than zero");
        }
        if c.topology_key.is_empty() {
            errs.required_at(&p.child("topologyKey"), "can not be empty");
        } else {
            errs.check_at(
                &p.child("topologyKey"),
                &c.topology_key,
                check_qualified_name,
            );
        }
        if let Some(m) = c.min_domains {
            if m <= 0 {
                errs.invalid_at(&p.child("minDomains"), m, "must be greater than 0");
            } else if c.when_unsatisfiable != UnsatisfiableConstraintAction::DoNotSchedule {
                errs.invalid_at(
                    &p.child("minDomains"),
                    m,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule",
                );
            }
        }
        if let Some(s) = &c.label_selector {
            validate_label_selector_at(s, &p.child("labelSelector"), errs);
        }
        for (j, k) in c.match_label_keys.iter().enumerate() {
            errs.check_at(&p.child("matchLabelKeys").index(j), k, check_qualified_name);
        }
        if !seen.insert((c.topology_key.as_str(), c.when_unsatisfiable)) {
            errs.duplicate_at(
                &p,
                format_args!("{{{}, {:?}}}", c.topology_key, c.when_unsatisfiable),
            );
        }
    }
}

const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];

/// Validates a pod spec: containers (names, images, ports, env, resources,
/// probes), scheduling fields (node selector, affinity, tolerations,
/// topology spread) and the numeric limits.
///
/// ```
/// use ketch_core::api::{Container, PodSpec};
/// use ketch_core::validation::{FieldPath, ValidationErrors, validate_pod_spec};
/// let spec = PodSpec { containers: vec![Container { name: "web".into(), ..Default::default() }], ..Default::default() };
/// let mut errs = ValidationErrors::default();
/// validate_pod_spec(&spec, &FieldPath::new("spec"), &mut errs);
/// assert_eq!(errs.to_string(), "spec.containers[0].image: Required value");
/// ```
pub fn validate_pod_spec(spec: &PodSpec, path: &FieldPath, errs: &mut ValidationErrors) {
    validate_pod_spec_at(spec, &Path::Base(path), errs)
}

fn validate_pod_spec_at(spec: &PodSpec, path: &Path<'_>, errs: &mut ValidationErrors) {
    let mut names = HashSet::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        validate_container(c, &path.child("initContainers").index(i), &mut names, errs);
    }
    if spec.containers.is_empty() {
        errs.required_at(&path.child("containers"), "");
    }
    for (i, c) in spec.containers.iter().enumerate() {
        validate_container(c, &path.child("containers").index(i), &mut names, errs);
    }
    errs.non_negative(
        &path.child("terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
    );
    errs.positive(
        &path.child("activeDeadlineSeconds"),
        spec.active_deadline_seconds,
    );
    if let Some(p) = &spec.dns_policy
        && !DNS_POLICIES.contains(&p.as_str())
    {
        errs.not_supported_at(&path.child("dnsPolicy"), p, DNS_POLICIES);
    }
    validate_labels_at(&spec.node_selector, &path.child("nodeSelector"), errs);
    let optional_names: [(&str, &Option<String>, NameCheck); 6] = [
        (
            "serviceAccountName",
            &spec.service_account_name,
            check_dns1123_subdomain,
        ),
        ("nodeName", &spec.node_name, check_dns1123_subdomain),
        ("hostname", &spec.hostname, check_dns1123_label),
        ("subdomain", &spec.subdomain, check_dns1123_label),
        (
            "schedulerName",
            &spec.scheduler_name,
            check_dns1123_subdomain,
        ),
        (
            "priorityClassName",
            &spec.priority_class_name,
            check_dns1123_subdomain,
        ),
    ];
    for (field, value, check) in optional_names {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.check_at(&path.child(field), v, check);
        }
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(a, &path.child("affinity"), errs);
    }
    for (i, t) in spec.tolerations.iter().enumerate() {
        validate_toleration(t, &path.child("tolerations").index(i), errs);
    }
    validate_topology_spread(
        &spec.topology_spread_constraints,
        &path.child("topologySpreadConstraints"),
        errs,
    );
}

fn metadata(meta: &ObjectMeta, namespaced: bool, check_name: NameCheck) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    validate_object_meta_at(meta, namespaced, check_name, &top("metadata"), &mut errs);
    errs
}

/// Validates a pod (the name is a DNS-1123 subdomain).
///
/// ```
/// use ketch_core::{ObjectMeta, api::{Container, Pod, PodSpec}, validation::validate_pod};
/// let pod = Pod {
///     metadata: ObjectMeta::named("default", "web"),
///     spec: PodSpec {
///         containers: vec![Container { name: "web".into(), image: Some("nginx".into()), ..Default::default() }],
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// assert_eq!(validate_pod(&pod), Ok(()));
/// ```
pub fn validate_pod(pod: &Pod) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&pod.metadata, true, check_dns1123_subdomain);
    validate_pod_spec_at(&pod.spec, &top("spec"), &mut errs);
    errs.into_result()
}

/// Validates a pod written through the status subresource, given the stored
/// pod: the metadata always, the spec only when it differs from the stored
/// one (a status update carries the stored spec, which was validated when it
/// was written). Pod status has no rules of its own.
///
/// ```
/// use ketch_core::{ObjectMeta, api::Pod, validation::{validate_pod, validate_pod_status_update}};
/// let old = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// assert!(validate_pod(&old).is_err()); // no containers
/// assert_eq!(validate_pod_status_update(&old.clone(), &old), Ok(()));
/// ```
pub fn validate_pod_status_update(pod: &Pod, old: &Pod) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&pod.metadata, true, check_dns1123_subdomain);
    if pod.spec != old.spec {
        validate_pod_spec_at(&pod.spec, &top("spec"), &mut errs);
    }
    errs.into_result()
}

fn validate_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) {
    let sel_path = path.child("selector");
    let before = errs.0.len();
    if selector.is_empty() {
        errs.required_at(&sel_path, "");
    } else {
        validate_label_selector_at(selector, &sel_path, errs);
    }
    // Matching an invalid selector would only repeat its problem.
    let selector_valid = errs.0.len() == before;
    let tpl = path.child("template");
    let tpl_meta = tpl.child("metadata");
    validate_labels_at(&template.metadata.labels, &tpl_meta.child("labels"), errs);
    if selector_valid && !selector.matches(&template.metadata.labels) {
        errs.invalid_at(
            &tpl_meta.child("labels"),
            &template.metadata.labels,
            "`selector` does not match template `labels`",
        );
    }
    validate_pod_spec_at(&template.spec, &tpl.child("spec"), errs);
    if let Some(p) = template.spec.restart_policy
        && p != RestartPolicy::Always
    {
        errs.not_supported_at(&tpl.child("spec").child("restartPolicy"), p, &["Always"]);
    }
}

/// Validates a replica set: replicas, selector, and a template whose labels
/// the selector matches.
///
/// ```
/// use ketch_core::{LabelSelector, ObjectMeta, api::{ReplicaSet, ReplicaSetSpec}, validation::validate_replica_set};
/// let rs = ReplicaSet { metadata: ObjectMeta::named("default", "web"), ..Default::default() };
/// let err = validate_replica_set(&rs).unwrap_err().to_string();
/// assert!(err.starts_with("spec.selector: Required value; spec.template.spec.containers: Required value"));
/// ```
pub fn validate_replica_set(rs: &ReplicaSet) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&rs.metadata, true, check_dns1123_subdomain);
    let spec = top("spec");
    errs.non_negative(&spec.child("replicas"), rs.spec.replicas);
    errs.non_negative(&spec.child("minReadySeconds"), rs.spec.min_ready_seconds);
    validate_template(&rs.spec.selector, &rs.spec.template, &spec, &mut errs);
    errs.into_result()
}

fn validate_int_or_percent(
    v: &IntOrString,
    max_percent: Option<i64>,
    path: &Path<'_>,
    errs: &mut ValidationErrors,
) -> bool {
    match v {
        IntOrString::Int(n) if *n < 0 => {
            errs.invalid_at(path, *n, "must be greater than or equal to 0");
            false
        }
        IntOrString::Int(n) => *n == 0,
        IntOrString::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            None => {
                errs.invalid_at(path, s, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%')");
                false
            }
            Some(p) if p < 0 => {
                errs.invalid_at(path, s, "must be greater than or equal to 0");
                false
            }
            Some(p) if max_percent.is_some_and(|m| p > m) => {
                errs.invalid_at(path, s, "must not be greater than 100%");
                false
            }
            Some(p) => p == 0,
        },
    }
}

/// Validates a deployment: replicas, selector and template, the strategy
/// (`maxSurge`/`maxUnavailable` as integers or percentages, not both zero;
/// no `rollingUpdate` with `Recreate`) and the rollout limits.
///
/// ```
/// use ketch_core::{IntOrString, api::{Deployment, DeploymentStrategy, RollingUpdateDeployment}};
/// use ketch_core::validation::validate_deployment;
/// let mut d: Deployment = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "web", "namespace": "default"},
///     "spec": {
///         "selector": {"matchLabels": {"app": "web"}},
///         "template": {"metadata": {"labels": {"app": "web"}},
///                      "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
///         "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
///     }
/// })).unwrap();
/// assert_eq!(
///     validate_deployment(&d).unwrap_err().to_string(),
///     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"
/// );
/// d.spec.strategy = None;
/// assert_eq!(validate_deployment(&d), Ok(()));
/// ```
pub fn validate_deployment(d: &Deployment) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&d.metadata, true, check_dns1123_subdomain);
    let spec = top("spec");
    errs.non_negative(&spec.child("replicas"), d.spec.replicas);
    errs.non_negative(&spec.child("minReadySeconds"), d.spec.min_ready_seconds);
    errs.non_negative(
        &spec.child("revisionHistoryLimit"),
        d.spec.revision_history_limit,
    );
    errs.positive(
        &spec.child("progressDeadlineSeconds"),
        d.spec.progress_deadline_seconds,
    );
    if let (Some(deadline), Some(min_ready)) =
        (d.spec.progress_deadline_seconds, d.spec.min_ready_seconds)
        && deadline > 0
        && deadline <= min_ready
    {
        errs.invalid_at(
            &spec.child("progressDeadlineSeconds"),
            deadline,
            "must be greater than minReadySeconds",
        );
    }
    validate_template(&d.spec.selector, &d.spec.template, &spec, &mut errs);
    if let Some(s) = &d.spec.strategy {
        let sp = spec.child("strategy");
        match (s.type_.unwrap_or_default(), &s.rolling_update) {
            (DeploymentStrategyType::Recreate, Some(_)) => errs.forbidden_at(
                &sp.child("rollingUpdate"),
                "may not be specified when strategy `type` is 'Recreate'",
            ),
            (DeploymentStrategyType::RollingUpdate, Some(ru)) => {
                let rp = sp.child("rollingUpdate");
                let surge_zero = ru.max_surge.as_ref().is_some_and(|v| {
                    validate_int_or_percent(v, None, &rp.child("maxSurge"), &mut errs)
                });
                let unavailable_zero = ru.max_unavailable.as_ref().is_some_and(|v| {
                    validate_int_or_percent(v, Some(100), &rp.child("maxUnavailable"), &mut errs)
                });
                if surge_zero && unavailable_zero {
                    errs.invalid_at(
                        &rp.child("maxUnavailable"),
                        ru.max_unavailable
                            .as_ref()
                            .map(int_or_string_text)
                            .unwrap_or_default(),
                        "may not be 0 when `maxSurge` is 0",
                    );
                }
            }
            _ => {}
        }
    }
    errs.into_result()
}

/// An `IntOrString` rendered the way [`FieldError::invalid`] shows values.
struct IntOrStringText(String);

impl fmt::Debug for IntOrStringText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for IntOrStringText {
    fn default() -> Self {
        Self(String::from("<unset>"))
    }
}

fn int_or_string_text(v: &IntOrString) -> IntOrStringText {
    IntOrStringText(match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => format!("{s:?}"),
    })
}

fn validate_cidr(s: &str, path: &Path<'_>, errs: &mut ValidationErrors) {
    let ok = s.split_once('/').is_some_and(|(ip, bits)| {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        bits.parse::<u8>().is_ok_and(|b| b <= max)
    });
    if !ok {
        errs.invalid_at(
            path,
            s,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        );
    }
}

const NODE_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalIP",
    "ExternalIP",
    "InternalDNS",
    "ExternalDNS",
];

/// Validates a node: taints, pod CIDRs, capacity, allocatable and addresses.
///
/// ```
/// use ketch_core::{ObjectMeta, Quantity, api::Node, validation::validate_node};
/// let mut node = Node { metadata: ObjectMeta::cluster_named("n1"), ..Default::default() };
/// node.status.capacity.insert("cpu".into(), Quantity::from("4"));
/// assert_eq!(validate_node(&node), Ok(()));
/// node.status.capacity.insert("memory".into(), Quantity::from("8GB"));
/// assert_eq!(
///     validate_node(&node).unwrap_err().to_string(),
///     r#"status.capacity.memory: invalid quantity "8GB": unknown suffix "GB""#
/// );
/// ```
pub fn validate_node(node: &Node) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&node.metadata, false, check_dns1123_subdomain);
    let spec = top("spec");
    let taints = spec.child("taints");
    let mut seen = HashSet::new();
    for (i, t) in node.spec.taints.iter().enumerate() {
        let p = taints.index(i);
        if t.key.is_empty() {
            errs.required_at(&p.child("key"), "");
        } else {
            errs.check_at(&p.child("key"), &t.key, check_qualified_name);
        }
        if let Some(v) = &t.value {
            errs.check_at(&p.child("value"), v, check_label_value);
        }
        if !seen.insert((t.key.as_str(), t.effect)) {
            errs.duplicate_at(&p, format_args!("{}:{:?}", t.key, t.effect));
        }
    }
    if let Some(c) = &node.spec.pod_cidr {
        validate_cidr(c, &spec.child("podCIDR"), &mut errs);
    }
    for (i, c) in node.spec.pod_cidrs.iter().enumerate() {
        validate_cidr(c, &spec.child("podCIDRs").index(i), &mut errs);
    }
    let status = top("status");
    validate_resource_list_at(&node.status.capacity, &status.child("capacity"), &mut errs);
    validate_resource_list_at(
        &node.status.allocatable,
        &status.child("allocatable"),
        &mut errs,
    );
    let addresses = status.child("addresses");
    for (i, a) in node.status.addresses.iter().enumerate() {
        let p = addresses.index(i);
        if !NODE_ADDRESS_TYPES.contains(&a.type_.as_str()) {
            errs.not_supported_at(&p.child("type"), &a.type_, NODE_ADDRESS_TYPES);
        }
        if a.address.is_empty() {
            errs.required_at(&p.child("address"), "");
        }
    }
    errs.into_result()
}

fn validate_ip(s: &str, path: &Path<'_>, errs: &mut ValidationErrors) {
    if s.parse::<IpAddr>().is_err() {
        errs.invalid_at(
            path,
            s,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
    }
}

const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];

/// Validates a service: the name (a DNS-1035 label), ports (numbers, unique
/// names, target ports, node ports only for `NodePort`), selector and
/// cluster IPs.
///
/// ```
/// use ketch_core::{ObjectMeta, api::{Service, ServicePort, ServiceSpec}, validation::validate_service};
/// let svc = Service {
///     metadata: ObjectMeta::named("default", "web"),
///     spec: ServiceSpec { ports: vec![ServicePort { port: 80, node_port: Some(30080), ..Default::default() }], ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(
///     validate_service(&svc).unwrap_err().to_string(),
///     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
/// );
/// ```
pub fn validate_service(svc: &Service) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&svc.metadata, true, check_dns1035_label);
    let spec = top("spec");
    let s = &svc.spec;
    let headless = s.cluster_ip.as_deref() == Some("None");
    if s.ports.is_empty() && !headless {
        errs.required_at(&spec.child("ports"), "");
    }
    let mut names = HashSet::new();
    let mut ports = HashSet::new();
    let node_port_type = s.type_ == Some(ServiceType::NodePort);
    let ports_path = spec.child("ports");
    for (i, p) in s.ports.iter().enumerate() {
        let pp = ports_path.index(i);
        match p.name.as_deref().unwrap_or("") {
            "" if s.ports.len() > 1 => errs.required_at(&pp.child("name"), ""),
            "" => {}
            name => {
                errs.check_at(&pp.child("name"), name, check_dns1123_label);
                if !names.insert(name) {
                    errs.duplicate_at(&pp.child("name"), name);
                }
            }
        }
        validate_port_number(p.port, &pp.child("port"), &mut errs);
        if let Some(t) = &p.target_port {
            validate_port_ref(t, &pp.child("targetPort"), &mut errs);
        }
        if let Some(np) = p.node_port {
            if !node_port_type {
                errs.forbidden_at(
                    &pp.child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            } else {
                validate_port_number(np, &pp.child("nodePort"), &mut errs);
            }
        }
        if !ports.insert((p.port, p.protocol.unwrap_or_default())) {
            errs.duplicate_at(
                &pp,
                format_args!("{}/{:?}", p.port, p.protocol.unwrap_or_default()),
            );
        }
    }
    validate_labels_at(&s.selector, &spec.child("selector"), &mut errs);
    if let Some(ip) = s
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        validate_ip(ip, &spec.child("clusterIP"), &mut errs);
    }
    for (i, ip) in s.cluster_ips.iter().enumerate() {
        if ip != "None" {
            validate_ip(ip, &spec.child("clusterIPs").index(i), &mut errs);
        }
    }
    if let (Some(ip), Some(first)) = (s.cluster_ip.as_deref(), s.cluster_ips.first())
        && !ip.is_empty()
        && ip != first
    {
        errs.invalid_at(
            &spec.child("clusterIPs").index(0),
            first,
            "must match `clusterIP` when present",
        );
    }
    for (field, value) in [
        ("externalTrafficPolicy", &s.external_traffic_policy),
        ("internalTrafficPolicy", &s.internal_traffic_policy),
    ] {
        if let Some(v) = value
            && !TRAFFIC_POLICIES.contains(&v.as_str())
        {
            errs.not_supported_at(&spec.child(field), v, TRAFFIC_POLICIES);
        }
    }
    errs.into_result()
}

/// Validates endpoints: addresses are IPs, ports are numbers with unique
/// names (required when a subset has several).
///
/// ```
/// use ketch_core::{ObjectMeta, api::{EndpointAddress, EndpointSubset, Endpoints}, validation::validate_endpoints};
/// let ep = Endpoints {
///     metadata: ObjectMeta::named("default", "web"),
///     subsets: vec![EndpointSubset { addresses: vec![EndpointAddress { ip: "10.0.0.300".into(), ..Default::default() }], ..Default::default() }],
/// };
/// assert_eq!(
///     validate_endpoints(&ep).unwrap_err().to_string(),
///     "subsets[0].addresses[0].ip: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
/// );
/// ```
pub fn validate_endpoints(ep: &Endpoints) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&ep.metadata, true, check_dns1123_subdomain);
    let subsets = top("subsets");
    for (i, s) in ep.subsets.iter().enumerate() {
        let sp = subsets.index(i);
        for (field, addresses) in [
            ("addresses", &s.addresses),
            ("notReadyAddresses", &s.not_ready_addresses),
        ] {
            for (j, a) in addresses.iter().enumerate() {
                validate_ip(&a.ip, &sp.child(field).index(j).child("ip"), &mut errs);
                if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                    errs.check_at(
                        &sp.child(field).index(j).child("hostname"),
                        h,
                        check_dns1123_label,
                    );
                }
            }
        }
        let mut names = HashSet::new();
        let ports = sp.child("ports");
        for (j, p) in s.ports.iter().enumerate() {
            let pp = ports.index(j);
            match p.name.as_deref().unwrap_or("") {
                "" if s.ports.len() > 1 => errs.required_at(&pp.child("name"), ""),
                "" => {}
                name => {
                    errs.check_at(&pp.child("name"), name, check_dns1123_label);
                    if !names.insert(name) {
                        errs.duplicate_at(&pp.child("name"), name);
                    }
                }
            }
            validate_port_number(p.port, &pp.child("port"), &mut errs);
        }
    }
    errs.into_result()
}

/// Validates a namespace: the name is a DNS-1123 label, finalizers are
/// qualified names.
pub fn validate_namespace(ns: &Namespace) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&ns.metadata, false, check_dns1123_label);
    for (i, f) in ns.spec.finalizers.iter().enumerate() {
        errs.check_at(
            &top("spec").child("finalizers").index(i),
            f,
            check_qualified_name,
        );
    }
    errs.into_result()
}

/// Validates a lease: a positive duration and non-negative transitions.
///
/// ```
/// use ketch_core::{ObjectMeta, api::{Lease, LeaseSpec}, validation::validate_lease};
/// let lease = Lease {
///     metadata: ObjectMeta::named("kube-node-lease", "n1"),
///     spec: LeaseSpec { lease_duration_seconds: Some(0), ..Default::default() },
/// };
/// assert_eq!(
///     validate_lease(&lease).unwrap_err().to_string(),
///     "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
/// );
/// ```
pub fn validate_lease(lease: &Lease) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&lease.metadata, true, check_dns1123_subdomain);
    let spec = top("spec");
    errs.positive(
        &spec.child("leaseDurationSeconds"),
        lease.spec.lease_duration_seconds,
    );
    errs.non_negative(
        &spec.child("leaseTransitions"),
        lease.spec.lease_transitions,
    );
    errs.into_result()
}

const EVENT_TYPES: &[&str] = &["Normal", "Warning"];

/// Validates an event: type `Normal` or `Warning`, a non-negative count, a
/// reason of at most 128 characters, and an involved object in the event's
/// namespace.
pub fn validate_event(ev: &Event) -> Result<(), ValidationErrors> {
    let mut errs = metadata(&ev.metadata, true, check_dns1123_subdomain);
    if let Some(t) = &ev.type_
        && !EVENT_TYPES.contains(&t.as_str())
    {
        errs.not_supported_at(&top("type"), t, EVENT_TYPES);
    }
    errs.non_negative(&top("count"), ev.count);
    if let Some(r) = &ev.reason
        && r.len() > 128
    {
        errs.invalid_at(&top("reason"), r, "must be no more than 128 characters");
    }
    let involved = top("involvedObject");
    if ev.involved_object.kind.as_deref().unwrap_or("").is_empty() {
        errs.required_at(&involved.child("kind"), "");
    }
    if let Some(ns) = ev
        .involved_object
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        && ns != ev.metadata.namespace()
    {
        errs.invalid_at(
            &involved.child("namespace"),
            ns,
            "does not match event.namespace",
        );
    }
    errs.into_result()
}

macro_rules! impl_validate {
    ($($kind:ty => $f:ident),* $(,)?) => {$(
        impl Validate for $kind {
            fn validate(&self) -> Result<(), ValidationErrors> {
                $f(self)
            }
        }
    )*};
}

impl_validate!(
    Pod => validate_pod,
    Node => validate_node,
    Service => validate_service,
    Endpoints => validate_endpoints,
    ReplicaSet => validate_replica_set,
    Deployment => validate_deployment,
    Namespace => validate_namespace,
    Lease => validate_lease,
    Event => validate_event,
);

/// Validates an object of any kind: the built-in kinds with their own
/// validator, any other kind (user-defined kinds, kinds registered later)
/// by its metadata, with the scope from `resource` and the name as a DNS-1123
/// subdomain.
///
/// ```
/// use ketch_core::{ApiResource, DynamicObject, Object, ObjectMeta, api::Pod, validation::validate_object};
/// let pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// let err = validate_object(&pod, &ApiResource::of::<Pod>()).unwrap_err();
/// assert_eq!(err.to_string(), "spec.containers: Required value");
///
/// let job = DynamicObject { api_version: "example.com/v1".into(), kind: "Job".into(),
///     metadata: ObjectMeta::named("default", "Bad_Name"), ..Default::default() };
/// let jobs = ketch_core::ApiResource { api_version: "example.com/v1".into(), kind: "Job".into(),
///     plural: "jobs".into(), namespaced: true };
/// assert!(validate_object(&job, &jobs).unwrap_err().to_string().starts_with("metadata.name: Invalid value"));
/// ```
pub fn validate_object(obj: &dyn Object, resource: &ApiResource) -> Result<(), ValidationErrors> {
    macro_rules! try_kinds {
        ($($kind:ty),*) => {$(
            if let Some(o) = obj.downcast_ref::<$kind>() {
                return o.validate();
            }
        )*};
    }
    try_kinds!(
        Pod, Node, Service, Endpoints, ReplicaSet, Deployment, Namespace, Lease, Event
    );
    metadata(obj.metadata(), resource.namespaced, check_dns1123_subdomain).into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_checks_table() {
        let long63 = "a".repeat(63);
        let long64 = "a".repeat(64);
        let cases: &[(NameCheck, &str, bool)] = &[
            (check_dns1123_label, "a", true),
            (check_dns1123_label, "web-1", true),
            (check_dns1123_label, &long63, true),
            (check_dns1123_label, &long64, false),
            (check_dns1123_label, "", false),
            (check_dns1123_label, "-a", false),
            (check_dns1123_label, "a-", false),
            (check_dns1123_label, "A", false),
            (check_dns1123_label, "a.b", false),
            (check_dns1123_subdomain, "a.b-c.d", true),
            (check_dns1123_subdomain, "a..b", false),
            (check_dns1123_subdomain, ".a", false),
            (check_dns1123_subdomain, &"a.".repeat(127), false),
            (check_dns1035_label, "web", true),
            (check_dns1035_label, "9web", false),
            (check_qualified_name, "app", true),
            (check_qualified_name, "App_Name.v1", true),
            (check_qualified_name, "example.com/gpu", true),
            (check_qualified_name, "kubernetes.io/hostname", true),
            (check_qualified_name, "/a", false),
            (check_qualified_name, "Example.com/a", false),
            (check_qualified_name, "a/", false),
            (check_qualified_name, "a/b/c", false),
            (check_qualified_name, &long64, false),
            (check_qualified_name, "_a", false),
            (check_label_value, "", true),
            (check_label_value, "A.b_c-1", true),
            (check_label_value, &long64, false),
            (check_label_value, "a/b", false),
            (check_port_name, "http", true),
            (check_port_name, "h2c-8080", true),
            (check_port_name, "a--b", false),
            (check_port_name, "123", false),
            (check_port_name, "http-is-too-long", false),
            (check_env_var_name, "_X.y-z", true),
            (check_env_var_name, "1X", false),
            (check_env_var_name, "A B", false),
        ];
        for (i, (check, input, ok)) in cases.iter().enumerate() {
            assert_eq!(check(input).is_ok(), *ok, "case {i}: {input:?}");
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn pod_spec_errors_table() {
        let cases: &[(serde_json::Value, &str)] = &[
            (
                json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "x"}]}),
                "spec.containers[1].name: Duplicate value: \"a\"",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]}),
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x",
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
                "spec.containers[0].resources.requests.cpu: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x",
                    "resources": {"requests": {"example.com/gpu": "500m", "gpu": "1", "memory": "-1Gi"}}}]}),
                "spec.containers[0].resources.requests.example.com/gpu: Invalid value: \"500m\": must be a whole number for extended resources; \
                 spec.containers[0].resources.requests.gpu: Invalid value: \"gpu\": must be a standard resource type or fully qualified; \
                 spec.containers[0].resources.requests.memory: Invalid value: \"-1Gi\": must be greater than or equal to 0",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"periodSeconds": 5}}]}),
                "spec.containers[0].livenessProbe: Required value: must specify a handler type",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {
                    "exec": {"command": ["true"]}, "tcpSocket": {"port": 80}, "successThreshold": 2}}]}),
                "spec.containers[0].livenessProbe: Forbidden: may not specify more than 1 handler type; \
                 spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "readinessProbe": {"httpGet": {"port": "Http"}}}]}),
                "spec.containers[0].readinessProbe.httpGet.port: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}],
                    "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                                    {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}]}),
                "spec.tolerations[0].operator: Invalid value: Equal: operator must be Exists when `key` is empty, which means \"match all values and all keys\"; \
                 spec.tolerations[1].value: Invalid value: \"v\": value must be empty when `operator` is 'Exists'; \
                 spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}], "affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["a"]},
                                              {"key": "disk", "operator": "Exists", "values": ["ssd"]}],
                         "matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["x"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}}}),
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: \"a\": must be an integer; \
                 spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'; \
                 spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: Unsupported value: \"metadata.labels\": supported values: \"metadata.name\"; \
                 spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}], "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}}}]}}}),
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}], "topologySpreadConstraints": [
                    {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                    {"maxSkew": 1, "topologyKey": "host", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2}]}),
                "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero; \
                 spec.topologySpreadConstraints[1]: Duplicate value: {zone, DoNotSchedule}; \
                 spec.topologySpreadConstraints[2].minDomains: Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule",
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "1A", "value": "x"},
                    {"name": "B", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}],
                    "dnsPolicy": "Cluster", "terminationGracePeriodSeconds": -1}),
                "spec.containers[0].env[0].name: Invalid value: \"1A\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit; \
                 spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty; \
                 spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0; \
                 spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ),
        ];
        for (spec, want) in cases {
            let got = validate_pod(&pod(spec.clone())).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{spec}");
        }
    }

    #[test]
    fn pod_status_update_checks_metadata_and_a_changed_spec() {
        // A stored spec is not validated again when the update carries it unchanged.
        let old = pod(json!({"containers": [{"name": "a"}]}));
        assert!(validate_pod(&old).is_err());
        let mut new = old.clone();
        new.status.phase = Some(crate::api::PodPhase::Running);
        assert_eq!(validate_pod_status_update(&new, &old), Ok(()));
        // A changed spec is.
        new.spec.containers[0].name = "b".into();
        assert_eq!(
            validate_pod_status_update(&new, &old)
                .unwrap_err()
                .to_string(),
            "spec.containers[0].image: Required value"
        );
        // Metadata always is.
        let mut new = old.clone();
        new.metadata.labels.insert("app".into(), "-web".into());
        let err = validate_pod_status_update(&new, &old).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.to_string()
                .starts_with("metadata.labels: Invalid value: \"-web\""),
            "{err}"
        );
    }

    #[test]
    fn object_meta_rules() {
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        assert_eq!(validate_pod(&p), Ok(()));
        p.metadata.name = None;
        p.metadata.generate_name = Some("web-".into());
        assert_eq!(validate_pod(&p), Ok(()));
        p.metadata.generate_name = Some("Web-".into());
        p.metadata.namespace = None;
        p.metadata.finalizers = vec!["example.com/x".into(), "example.com/x".into()];
        p.metadata.annotations.insert("bad key".into(), "v".into());
        assert_eq!(
            validate_pod(&p).unwrap_err().to_string(),
            "metadata.generateName: Invalid value: \"Web-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character; \
             metadata.namespace: Required value; \
             metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character; \
             metadata.finalizers[1]: Duplicate value: \"example.com/x\""
        );
        let node = Node {
            metadata: ObjectMeta::named("default", "n1"),
            ..Node::default()
        };
        assert_eq!(
            validate_node(&node).unwrap_err().to_string(),
            "metadata.namespace: Forbidden: not allowed on this type (it is cluster-scoped)"
        );
        let nameless = Namespace::default();
        assert_eq!(
            nameless.validate().unwrap_err().to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn workload_selector_must_match_template() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": -1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                             "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}
            }
        }))
        .unwrap();
        assert_eq!(
            rs.validate().unwrap_err().to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0; \
             spec.template.metadata.labels: Invalid value: {\"app\": \"db\"}: `selector` does not match template `labels`; \
             spec.template.spec.restartPolicy: Unsupported value: Never: supported values: \"Always\""
        );
    }

    #[test]
    fn deployment_strategy_rules() {
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "a", "image": "x"}]}},
                "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
                "minReadySeconds": 10,
                "progressDeadlineSeconds": 10
            }
        }))
        .unwrap();
        assert_eq!(
            d.validate().unwrap_err().to_string(),
            "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds; \
             spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        );
        d.spec.progress_deadline_seconds = None;
        d.spec.strategy = serde_json::from_value(
            json!({"rollingUpdate": {"maxSurge": "x%", "maxUnavailable": "120%"}}),
        )
        .unwrap();
        assert_eq!(
            d.validate().unwrap_err().to_string(),
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x%\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%'); \
             spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%"
        );
    }

    #[test]
    fn service_rules() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "1web", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.0.0.1",
                "clusterIPs": ["10.0.0.2"],
                "ports": [{"port": 80, "targetPort": 0}, {"name": "a", "port": 80, "nodePort": 70000}]
            }
        }))
        .unwrap();
        assert_eq!(
            svc.validate().unwrap_err().to_string(),
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character; \
             spec.ports[0].name: Required value; \
             spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive; \
             spec.ports[1].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive; \
             spec.ports[1]: Duplicate value: 80/TCP; \
             spec.clusterIPs[0]: Invalid value: \"10.0.0.2\": must match `clusterIP` when present"
        );
        let headless: Service = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}}
        }))
        .unwrap();
        assert_eq!(headless.validate(), Ok(()));
    }

    #[test]
    fn node_lease_event_and_dynamic_rules() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": {"podCIDR": "10.0.0.0/33", "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]},
            "status": {"addresses": [{"type": "Internal", "address": "10.0.0.1"}]}
        }))
        .unwrap();
        assert_eq!(
            node.validate().unwrap_err().to_string(),
            "spec.taints[1]: Duplicate value: a:NoSchedule; \
             spec.podCIDR: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64); \
             status.addresses[0].type: Unsupported value: \"Internal\": supported values: \"Hostname\", \"InternalIP\", \"ExternalIP\", \"InternalDNS\", \"ExternalDNS\""
        );
        let ev: Event = serde_json::from_value(json!({
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"},
            "type": "Error",
            "count": -1
        }))
        .unwrap();
        assert_eq!(
            ev.validate().unwrap_err().to_string(),
            "type: Unsupported value: \"Error\": supported values: \"Normal\", \"Warning\"; \
             count: Invalid value: -1: must be greater than or equal to 0; \
             involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
        );
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"name": "b", "port": 0}]}]
        }))
        .unwrap();
        assert_eq!(
            ep.validate().unwrap_err().to_string(),
            "subsets[0].ports[0].name: Required value; \
             subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        let cluster_scoped = ApiResource {
            api_version: "example.com/v1".into(),
            kind: "Thing".into(),
            plural: "things".into(),
            namespaced: false,
        };
        let thing = crate::DynamicObject {
            api_version: "example.com/v1".into(),
            kind: "Thing".into(),
            metadata: ObjectMeta::named("default", "a"),
            ..Default::default()
        };
        assert_eq!(
            validate_object(&thing, &cluster_scoped)
                .unwrap_err()
                .to_string(),
            "metadata.namespace: Forbidden: not allowed on this type (it is cluster-scoped)"
        );
    }

    #[test]
    fn field_path_display() {
        assert_eq!(FieldPath::root().to_string(), "<root>");
        assert_eq!(FieldPath::root().child("spec").to_string(), "spec");
        assert_eq!(FieldPath::root().index(2).to_string(), "[2]");
    }
}
