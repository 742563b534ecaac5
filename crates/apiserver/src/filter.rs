//! Which objects a list or watch selects: namespace, label selector and field
//! selector, parsed once per request and matched per object without
//! allocating.

use std::borrow::Cow;

use ketch_core::Object;
use ketch_core::selector::Selector;

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
    pub labels: Selector,
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
            Some(s) => Selector::parse(s).map_err(|e| SelectorError::Label {
                selector: s.to_string(),
                message: e.to_string(),
            })?,
            None => Selector::everything(),
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

    #[test]
    fn filter_rejects_bad_label_selectors_with_the_selector_in_the_message() {
        let strategy = crate::registry::DynamicStrategy::new(
            ketch_core::ApiResource {
                api_version: "example.com/v1".into(),
                kind: "Job".into(),
                plural: "jobs".into(),
                namespaced: true,
            },
            false,
        );
        for bad in ["app in web", "a b c", "=x", "k=-v"] {
            let err = ObjectFilter::new(None, Some(bad), None, &strategy).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        let ok = ObjectFilter::new(None, Some("app=web,tier in (a,b),!old"), None, &strategy);
        assert!(ok.is_ok());
    }

    #[test]
    fn field_selector_table() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(s.requirements().len(), 2);
        assert_eq!(s.equality("spec.nodeName"), Some("n1"));
        assert_eq!(s.equality("status.phase"), None);
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .equality("spec.nodeName"),
            Some("")
        );
        assert!(FieldSelector::parse("a=b,,c=d").is_err());
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
