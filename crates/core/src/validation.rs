//! Validation of objects, with field paths in every error.
//!
//! ```
//! use ketch_core::validation::check_dns1123_label;
//! assert!(check_dns1123_label("web-1").is_ok());
//! assert!(check_dns1123_label("Web").is_err());
//! ```

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
    if !s.split('.').all(is_dns_label_shape) {
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
    let name = match s.split_once('/') {
        Some((prefix, name)) => {
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
