//! Field-level validation of the built-in kinds: names, labels, containers,
//! quantities, ports. Every problem names the field path it is about, as
//! Kubernetes reports it (`spec.containers[0].image: Required value`).

use std::fmt;

use ketch_core::api::{Container, Node, Pod, Service};
use ketch_core::{ApiError, ObjectMeta, Quantity};

/// One invalid field.
///
/// ```
/// use ketch_apiserver::validation::FieldError;
/// let e = FieldError::required("spec.containers[0].image");
/// assert_eq!(e.to_string(), "spec.containers[0].image: Required value");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `metadata.name`.
    pub path: String,
    /// What is wrong, e.g. `Required value` or `Invalid value: "x": ...`.
    pub message: String,
}

impl FieldError {
    /// A missing required field.
    pub fn required(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: String::from("Required value"),
        }
    }

    /// A field with a bad value.
    pub fn invalid(path: impl Into<String>, value: &str, detail: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            message: format!("Invalid value: {value:?}: {detail}"),
        }
    }

    /// A field that may not change.
    pub fn immutable(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: String::from("field is immutable"),
        }
    }

    /// A duplicated entry.
    pub fn duplicate(path: impl Into<String>, value: &str) -> Self {
        Self {
            path: path.into(),
            message: format!("Duplicate value: {value:?}"),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Turns a list of field errors into `ApiError::Invalid` naming the object.
pub fn into_invalid(kind: &str, name: &str, errors: &[FieldError]) -> ApiError {
    let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::Invalid(format!("{kind} {name:?} is invalid: {}", details.join(", ")))
}

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// Checks an RFC 1123 label: lower-case alphanumerics and `-`, starting and
/// ending alphanumeric, at most 63 characters.
///
/// ```
/// use ketch_apiserver::validation::dns1123_label;
/// assert!(dns1123_label("web-0").is_ok());
/// assert!(dns1123_label("Web").is_err());
/// ```
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(String::from("must not be empty"));
    }
    if value.len() > DNS1123_LABEL_MAX {
        return Err(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    let b = value.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| alnum(c) || c == b'-') || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(String::from(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 subdomain: dot-separated labels, at most 253 characters.
///
/// ```
/// use ketch_apiserver::validation::dns1123_subdomain;
/// assert!(dns1123_subdomain("web.example.com").is_ok());
/// assert!(dns1123_subdomain("web_1").is_err());
/// ```
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(String::from("must not be empty"));
    }
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    let b = value.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| alnum(c) || c == b'-' || c == b'.')
        || !alnum(b[0])
        || !alnum(b[b.len() - 1])
        || value.contains("..")
        || value.contains(".-")
        || value.contains("-.")
    {
        return Err(String::from(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    Ok(())
}

fn qualified_name_part(part: &str) -> bool {
    let b = part.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Checks a label or annotation key: `[prefix/]name`, the prefix a DNS
/// subdomain, the name at most 63 alphanumerics, `-`, `_`, `.`.
///
/// ```
/// use ketch_apiserver::validation::qualified_name;
/// assert!(qualified_name("app.kubernetes.io/name").is_ok());
/// assert!(qualified_name("-bad").is_err());
/// ```
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        dns1123_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if !qualified_name_part(name) {
        return Err(String::from(
            "name part must consist of at most 63 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
///
/// ```
/// use ketch_apiserver::validation::label_value;
/// assert!(label_value("").is_ok());
/// assert!(label_value("v1.2").is_ok());
/// assert!(label_value("a b").is_err());
/// ```
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || qualified_name_part(value) {
        Ok(())
    } else {
        Err(String::from(
            "a valid label must be an empty string or consist of at most 63 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ))
    }
}

/// Checks a quantity's text.
///
/// ```
/// use ketch_apiserver::validation::quantity;
/// use ketch_core::Quantity;
/// assert!(quantity(&Quantity::from("500m")).is_ok());
/// assert!(quantity(&Quantity::from("lots")).is_err());
/// ```
pub fn quantity(q: &Quantity) -> Result<(), String> {
    let s = q.0.as_str();
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    let dots = number.matches('.').count();
    if number.is_empty() || number == "." || dots > 1 {
        return Err(String::from(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ));
    }
    let suffix_ok = matches!(
        suffix,
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.bytes().all(|c| c.is_ascii_digit())
        })
        .unwrap_or(false);
    if !suffix_ok {
        return Err(format!("unknown suffix {suffix:?}"));
    }
    if s.starts_with('-') {
        return Err(String::from("must be greater than or equal to 0"));
    }
    Ok(())
}

/// Validates the metadata every object carries: name (RFC 1123 subdomain, or
/// label when `label_name`), labels and annotations.
pub fn object_meta(meta: &ObjectMeta, label_name: bool, errors: &mut Vec<FieldError>) {
    let name = meta.name();
    if name.is_empty() {
        errors.push(FieldError::required("metadata.name"));
    } else {
        let check = if label_name {
            dns1123_label(name)
        } else {
            dns1123_subdomain(name)
        };
        if let Err(e) = check {
            errors.push(FieldError::invalid("metadata.name", name, e));
        }
    }
    for (k, v) in &meta.labels {
        if let Err(e) = qualified_name(k) {
            errors.push(FieldError::invalid("metadata.labels", k, e));
        }
        if let Err(e) = label_value(v) {
            errors.push(FieldError::invalid(format!("metadata.labels[{k}]"), v, e));
        }
    }
    for k in meta.annotations.keys() {
        if let Err(e) = qualified_name(k) {
            errors.push(FieldError::invalid("metadata.annotations", k, e));
        }
    }
    let total: usize = meta.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > 256 * 1024 {
        errors.push(FieldError {
            path: String::from("metadata.annotations"),
            message: String::from("Too long: must have at most 262144 bytes"),
        });
    }
}

fn container(c: &Container, path: &str, names: &mut Vec<String>, errors: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errors.push(FieldError::required(format!("{path}.name")));
    } else if let Err(e) = dns1123_label(&c.name) {
        errors.push(FieldError::invalid(format!("{path}.name"), &c.name, e));
    } else if names.contains(&c.name) {
        errors.push(FieldError::duplicate(format!("{path}.name"), &c.name));
    } else {
        names.push(c.name.clone());
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errors.push(FieldError::required(format!("{path}.image")));
    }
    for (i, p) in c.ports.iter().enumerate() {
        if !(1..=65535).contains(&p.container_port) {
            errors.push(FieldError::invalid(
                format!("{path}.ports[{i}].containerPort"),
                &p.container_port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(hp) = p.host_port
            && !(0..=65535).contains(&hp)
        {
            errors.push(FieldError::invalid(
                format!("{path}.ports[{i}].hostPort"),
                &hp.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    if let Some(res) = &c.resources {
        for (which, list) in [("requests", &res.requests), ("limits", &res.limits)] {
            for (name, q) in list {
                if let Err(e) = quantity(q) {
                    errors.push(FieldError::invalid(
                        format!("{path}.resources.{which}[{name}]"),
                        &q.0,
                        e,
                    ));
                }
            }
        }
    }
}

/// Validates a pod.
pub fn pod(pod: &Pod) -> Vec<FieldError> {
    let mut errors = Vec::new();
    object_meta(&pod.metadata, false, &mut errors);
    let spec = &pod.spec;
    if spec.containers.is_empty() {
        errors.push(FieldError::required("spec.containers"));
    }
    let mut names = Vec::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        container(c, &format!("spec.initContainers[{i}]"), &mut names, &mut errors);
    }
    for (i, c) in spec.containers.iter().enumerate() {
        container(c, &format!("spec.containers[{i}]"), &mut names, &mut errors);
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        errors.push(FieldError::invalid(
            "spec.terminationGracePeriodSeconds",
            &g.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(node) = &spec.node_name
        && let Err(e) = dns1123_subdomain(node)
    {
        errors.push(FieldError::invalid("spec.nodeName", node, e));
    }
    for (k, v) in &spec.node_selector {
        if let Err(e) = qualified_name(k) {
            errors.push(FieldError::invalid("spec.nodeSelector", k, e));
        }
        if let Err(e) = label_value(v) {
            errors.push(FieldError::invalid(format!("spec.nodeSelector[{k}]"), v, e));
        }
    }
    errors
}

/// Validates a node.
pub fn node(node: &Node) -> Vec<FieldError> {
    let mut errors = Vec::new();
    object_meta(&node.metadata, false, &mut errors);
    for (which, list) in [
        ("status.capacity", &node.status.capacity),
        ("status.allocatable", &node.status.allocatable),
    ] {
        for (name, q) in list {
            if let Err(e) = quantity(q) {
                errors.push(FieldError::invalid(format!("{which}[{name}]"), &q.0, e));
            }
        }
    }
    for (i, t) in node.spec.taints.iter().enumerate() {
        if let Err(e) = qualified_name(&t.key) {
            errors.push(FieldError::invalid(
                format!("spec.taints[{i}].key"),
                &t.key,
                e,
            ));
        }
    }
    errors
}

/// Validates a service (cluster IP checks belong to the allocator).
pub fn service(svc: &Service) -> Vec<FieldError> {
    let mut errors = Vec::new();
    object_meta(&svc.metadata, true, &mut errors);
    let mut seen = Vec::new();
    for (i, p) in svc.spec.ports.iter().enumerate() {
        if !(1..=65535).contains(&p.port) {
            errors.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                &p.port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let name = p.name.clone().unwrap_or_default();
        if svc.spec.ports.len() > 1 && name.is_empty() {
            errors.push(FieldError::required(format!("spec.ports[{i}].name")));
        }
        if seen.contains(&name) && !name.is_empty() {
            errors.push(FieldError::duplicate(format!("spec.ports[{i}].name"), &name));
        }
        seen.push(name);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use ketch_core::api::{PodSpec, ResourceRequirements};

    #[test]
    fn quantity_table() {
        for ok in ["1", "100m", "1.5", "1Gi", "500Mi", "1e3", "2E-3", "0", ".5", "+1"] {
            assert!(quantity(&Quantity::from(ok)).is_ok(), "{ok}");
        }
        for bad in ["", "abc", "1.5.0", "1Xi", "-1", "1e", "Gi", "1 Gi", "."] {
            assert!(quantity(&Quantity::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_table() {
        assert!(dns1123_subdomain("a.b-c").is_ok());
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
        assert!(dns1123_label(&"a".repeat(63)).is_ok());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_label("a.b").is_err());
    }

    #[test]
    fn pod_errors_name_their_field_paths() {
        let mut p = Pod {
            metadata: ObjectMeta::named("default", "Bad_Name"),
            spec: PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: [("cpu".to_string(), Quantity::from("lots"))].into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        let paths: Vec<String> = pod(&p).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            vec![
                "metadata.name",
                "spec.containers[0].image",
                "spec.containers[0].resources.requests[cpu]"
            ]
        );
        p.metadata.name = Some("ok".into());
        p.spec.containers[0].image = Some("nginx".into());
        p.spec.containers[0].resources = None;
        assert!(pod(&p).is_empty());
    }
}
