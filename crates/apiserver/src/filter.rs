//! Which objects a list or watch selects: namespace, label selector and field
//! selector, parsed once per request and matched per object without
//! allocating.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ketch_core::Object;

use crate::registry::Strategy;

/// Errors of parsing selectors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector does not parse.
    #[error("invalid label selector {selector:?}: {message}")]
    Label {
        /// The selector text.
        selector: String,
        /// What is wrong.
        message: String,
    },
    /// The field selector does not parse or names an unsupported field.
    #[error("invalid field selector {selector:?}: {message}")]
    Field {
        /// The selector text.
        selector: String,
        /// What is wrong.
        message: String,
    },
}

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

impl LabelRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRequirement::Equals(k, v) => labels.get(k) == Some(v),
            LabelRequirement::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed label selector in Kubernetes' string form.
///
/// ```
/// use std::collections::BTreeMap;
/// use ketch_apiserver::filter::LabelSelector;
/// let s = LabelSelector::parse("app=web,tier in (front, back),!legacy").unwrap();
/// let labels: BTreeMap<String, String> =
///     [("app".into(), "web".into()), ("tier".into(), "front".into())].into();
/// assert!(s.matches(&labels));
/// assert!(LabelSelector::parse("app in web").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
    /// comma-separated.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let err = |message: &str| SelectorError::Label {
            selector: selector.to_string(),
            message: message.to_string(),
        };
        let mut requirements = Vec::new();
        let mut rest = selector.trim();
        while !rest.is_empty() {
            // Split off one requirement: up to a comma outside parentheses.
            let mut depth = 0i32;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let part = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("").trim_start();
            if part.is_empty() {
                return Err(err("empty requirement"));
            }
            requirements.push(parse_requirement(part).map_err(|m| err(&m))?);
            if end < selector.len() && rest.is_empty() && selector.trim_end().ends_with(',') {
                return Err(err("trailing comma"));
            }
        }
        Ok(Self { requirements })
    }

    /// True when every requirement holds.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }
}

fn check_key(key: &str) -> Result<String, String> {
    crate::validation::qualified_name(key).map_err(|e| format!("key {key:?}: {e}"))?;
    Ok(key.to_string())
}

fn check_value(value: &str) -> Result<String, String> {
    crate::validation::label_value(value).map_err(|e| format!("value {value:?}: {e}"))?;
    Ok(value.to_string())
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesized value list, got {text:?}"))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| check_value(v.trim()))
        .collect::<Result<_, _>>()?;
    if values.is_empty() || (values.len() == 1 && values[0].is_empty() && inner.trim().is_empty())
    {
        return Err(String::from("empty value list"));
    }
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(check_key(key.trim())?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(
            check_key(k.trim())?,
            check_value(v.trim())?,
        ));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(LabelRequirement::Equals(
            check_key(k.trim())?,
            check_value(v.trim())?,
        ));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or("").trim();
    match words.next().map(str::trim_start) {
        None => Ok(LabelRequirement::Exists(check_key(key)?)),
        Some(rest) => {
            if let Some(set) = rest.strip_prefix("notin") {
                Ok(LabelRequirement::NotIn(check_key(key)?, parse_set(set)?))
            } else if let Some(set) = rest.strip_prefix("in") {
                Ok(LabelRequirement::In(check_key(key)?, parse_set(set)?))
            } else {
                Err(format!("unknown operator in {part:?}"))
            }
        }
    }
}

/// One field requirement: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// The value compared with.
    pub value: String,
    /// True for `!=`.
    pub negated: bool,
}

/// A parsed field selector such as `spec.nodeName=n1,status.phase!=Failed`.
///
/// ```
/// use ketch_apiserver::filter::FieldSelector;
/// let s = FieldSelector::parse("spec.nodeName=n1").unwrap();
/// assert_eq!(s.equality("spec.nodeName"), Some("n1"));
/// assert!(FieldSelector::parse("spec.nodeName").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses comma-separated `field=value`, `field==value`, `field!=value`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in selector.split(',').map(str::trim) {
            if part.is_empty() {
                if selector.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError::Field {
                    selector: selector.to_string(),
                    message: String::from("empty requirement"),
                });
            }
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, v, false)
            } else {
                return Err(SelectorError::Field {
                    selector: selector.to_string(),
                    message: format!("{part:?} is not of the form field=value or field!=value"),
                });
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                value: value.trim().to_string(),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// The value `field` must equal, when the selector has such a requirement.
    pub fn equality(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negated)
            .map(|r| r.value.as_str())
    }

    /// The requirements.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// The field every object supports in field selectors besides its kind's own.
pub(crate) fn meta_field<'a>(obj: &'a dyn Object, field: &str) -> Option<Cow<'a, str>> {
    match field {
        "metadata.name" => Some(Cow::Borrowed(obj.metadata().name())),
        "metadata.namespace" => Some(Cow::Borrowed(obj.metadata().namespace())),
        _ => None,
    }
}

/// Namespace + labels + fields of one list or watch, ready to match.
#[derive(Clone, Debug, Default)]
pub struct ObjectFilter {
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// The value of a `spec.nodeName=<v>` requirement, used to index watchers.
    pub node_name: Option<String>,
}

impl ObjectFilter {
    /// Parses the selectors of a request and checks the fields against what
    /// `strategy` supports.
    pub fn new(
        namespace: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
        strategy: &dyn Strategy,
    ) -> Result<Self, SelectorError> {
        let labels = match label_selector {
            Some(s) => LabelSelector::parse(s)?,
            None => LabelSelector::default(),
        };
        let fields = match field_selector {
            Some(s) => FieldSelector::parse(s)?,
            None => FieldSelector::default(),
        };
        for r in fields.requirements() {
            if !matches!(r.field.as_str(), "metadata.name" | "metadata.namespace")
                && !strategy.supports_field(&r.field)
            {
                return Err(SelectorError::Field {
                    selector: field_selector.unwrap_or_default().to_string(),
                    message: format!("field label not supported: {}", r.field),
                });
            }
        }
        let node_name = fields.equality("spec.nodeName").map(str::to_string);
        Ok(Self {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
            node_name,
        })
    }

    /// True when `obj` is selected.
    pub fn matches(&self, obj: &dyn Object, strategy: &dyn Strategy) -> bool {
        let meta = obj.metadata();
        if let Some(ns) = &self.namespace
            && meta.namespace() != ns
        {
            return false;
        }
        if !self.labels.matches(&meta.labels) {
            return false;
        }
        self.fields.requirements().iter().all(|r| {
            let value = meta_field(obj, &r.field).or_else(|| strategy.field(obj, &r.field));
            let equal = value.as_deref().unwrap_or("") == r.value;
            equal != r.negated
        })
    }

    /// True when the filter selects every object of a namespace (or all).
    pub fn selects_all(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_table() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("missing!=x", true),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web, tier in (back, front)", true),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
        for bad in ["app in web", "a b c", "=x", "app=web,", "app in ()", "bad key=1", "k=-v"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selector_table() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(s.requirements().len(), 2);
        assert_eq!(s.equality("spec.nodeName"), Some("n1"));
        assert_eq!(s.equality("status.phase"), None);
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("spec.nodeName=").unwrap().equality("spec.nodeName"),
            Some("")
        );
        assert!(FieldSelector::parse("a=b,,c=d").is_err());
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
