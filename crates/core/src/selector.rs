//! Label selectors (`matchLabels` + `matchExpressions`, and the string form)
//! and field selectors.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ketch_core::selector::{FieldSelector, Selector};
//! let labels: BTreeMap<String, String> =
//!     [("app", "web"), ("env", "a")].map(|(k, v)| (k.to_string(), v.to_string())).into();
//! let sel: Selector = "app=web,tier!=db,env in (a,b),!legacy".parse().unwrap();
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), "app=web,env in (a,b),!legacy,tier!=db");
//!
//! let fields: FieldSelector = "spec.nodeName=,status.phase!=Failed".parse().unwrap();
//! assert_eq!(fields.to_string(), "spec.nodeName=,status.phase!=Failed");
//! ```
//!
//! # Empty and missing selectors
//!
//! An empty [`LabelSelector`] (no `matchLabels`, no `matchExpressions`) and an
//! empty [`Selector`] (the string `""`) match every object. A *missing*
//! selector is a different thing: fields that hold an
//! `Option<LabelSelector>` (pod affinity terms, topology spread constraints)
//! follow Kubernetes and treat `None` as matching nothing; workload selectors
//! (`spec.selector` of a Deployment or ReplicaSet) are required and
//! validation rejects empty ones. Callers make that choice with
//! [`LabelSelector::matches_optional`].
//!
//! Matching never allocates: labels are looked up through the [`Labels`]
//! trait and the values of `in`/`notin` requirements are kept sorted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::validation::{check_label_value, check_qualified_name};

/// A label query over a set of objects, as in a Deployment's `spec.selector`.
///
/// ```
/// use ketch_core::{LabelSelector, ObjectMeta};
/// let sel = LabelSelector::from_labels([("app", "web")]);
/// assert!(sel.matches(&ObjectMeta::default().with_label("app", "web")));
/// assert!(!sel.matches(&ObjectMeta::default().with_label("app", "db")));
/// assert!(LabelSelector::default().matches(&ObjectMeta::default()));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all be present with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One requirement of a [`LabelSelector`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the key relates to the values.
    pub operator: LabelSelectorOperator,
    /// Values for `In` and `NotIn`; empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Operators of a [`LabelSelectorRequirement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LabelSelectorOperator {
    /// The label's value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// Something labels can be looked up in without allocating.
///
/// ```
/// use std::collections::HashMap;
/// use ketch_core::selector::Labels;
/// let labels: HashMap<String, String> = [("app".to_string(), "web".to_string())].into();
/// assert_eq!(labels.label("app"), Some("web"));
/// ```
pub trait Labels {
    /// The value of the label `key`, if present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for ObjectMeta {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.label(key)
    }
}

impl Labels for [(&str, &str)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

impl LabelSelector {
    /// A selector of `matchLabels` only.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            match_labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    /// True when the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfy every `matchLabels` entry and every
    /// `matchExpressions` requirement. An empty selector matches everything;
    /// `In` with no values matches nothing and `NotIn` with no values
    /// matches everything (validation rejects both).
    ///
    /// ```
    /// use ketch_core::{LabelSelector, LabelSelectorOperator, LabelSelectorRequirement, ObjectMeta};
    /// let sel = LabelSelector {
    ///     match_expressions: vec![LabelSelectorRequirement {
    ///         key: "env".into(),
    ///         operator: LabelSelectorOperator::NotIn,
    ///         values: vec!["prod".into()],
    ///     }],
    ///     ..LabelSelector::default()
    /// };
    /// assert!(sel.matches(&ObjectMeta::default()));
    /// assert!(!sel.matches(&ObjectMeta::default().with_label("env", "prod")));
    /// ```
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| {
                let value = labels.label(&r.key);
                match r.operator {
                    LabelSelectorOperator::In => {
                        value.is_some_and(|v| r.values.iter().any(|x| x == v))
                    }
                    LabelSelectorOperator::NotIn => {
                        value.is_none_or(|v| r.values.iter().all(|x| x != v))
                    }
                    LabelSelectorOperator::Exists => value.is_some(),
                    LabelSelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }

    /// Kubernetes semantics for an optional selector: `None` matches nothing,
    /// `Some(selector)` matches as [`LabelSelector::matches`].
    ///
    /// ```
    /// use ketch_core::{LabelSelector, ObjectMeta};
    /// let labels = ObjectMeta::default();
    /// assert!(!LabelSelector::matches_optional(None, &labels));
    /// assert!(LabelSelector::matches_optional(Some(&LabelSelector::default()), &labels));
    /// ```
    pub fn matches_optional<L: Labels + ?Sized>(
        selector: Option<&LabelSelector>,
        labels: &L,
    ) -> bool {
        selector.is_some_and(|s| s.matches(labels))
    }
}

/// Why a selector could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The parser met a token it did not expect.
    #[error("invalid selector: unexpected {found} at position {position}, expected {expected}")]
    UnexpectedToken {
        /// The offending token, quoted, or `end of input`.
        found: String,
        /// Byte offset of the token.
        position: usize,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A label key is not a qualified name.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label value is malformed (or not an integer for `>` and `<`).
    #[error("invalid label value {value:?}: {reason}")]
    InvalidValue {
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field selector names a field that is not supported.
    #[error(
        "unknown field {field:?} in field selector (supported: metadata.name, metadata.namespace, spec.nodeName, status.phase)"
    )]
    UnknownField {
        /// The field path.
        field: String,
    },
    /// A field selector uses a field the kind does not have.
    #[error("field {field} is not supported for kind {kind}")]
    UnsupportedField {
        /// The field.
        field: Field,
        /// The kind.
        kind: String,
    },
    /// A field selector term is not `<field>=<value>`, `<field>==<value>` or
    /// `<field>!=<value>`.
    #[error(
        "invalid field selector term {term:?}: expected <field>=<value>, <field>==<value> or <field>!=<value>"
    )]
    InvalidFieldTerm {
        /// The term.
        term: String,
    },
}

/// The operator of a [`Requirement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `key=value` (also `key==value`).
    Equals,
    /// `key!=value`: absent or a different value.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: absent or none of the values.
    NotIn,
    /// `key`: present.
    Exists,
    /// `!key`: absent.
    DoesNotExist,
    /// `key>n`: an integer value greater than `n`.
    GreaterThan,
    /// `key<n`: an integer value less than `n`.
    LessThan,
}

/// One requirement of a [`Selector`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and without duplicates.
    values: Vec<String>,
}

impl Requirement {
    /// A requirement; `values` are sorted and de-duplicated. `Equals`,
    /// `NotEquals`, `GreaterThan` and `LessThan` keep only the first value
    /// (`""` when none is given), `Exists` and `DoesNotExist` none. Keys and
    /// values are not checked here (parsing checks them).
    ///
    /// ```
    /// use ketch_core::selector::{Operator, Requirement};
    /// let r = Requirement::new("env", Operator::In, ["b", "a", "b"]);
    /// assert_eq!(r.values(), ["a", "b"]);
    /// assert_eq!(r.to_string(), "env in (a,b)");
    /// let eq = Requirement::new("env", Operator::Equals, ["b", "a"]);
    /// assert_eq!(eq.to_string(), "env=b");
    /// ```
    pub fn new<V: Into<String>>(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let mut values = values.into_iter().map(Into::into);
        let mut values: Vec<String> = match operator {
            Operator::In | Operator::NotIn => values.collect(),
            Operator::Exists | Operator::DoesNotExist => Vec::new(),
            _ => vec![values.next().unwrap_or_default()],
        };
        values.sort();
        values.dedup();
        Self {
            key: key.into(),
            operator,
            values,
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy the requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        let contains = |v: &str| self.values.binary_search_by(|x| x.as_str().cmp(v)).is_ok();
        let compare = |want: std::cmp::Ordering| match (
            value.map(str::parse::<i64>),
            self.values.first().map(|b| b.parse::<i64>()),
        ) {
            (Some(Ok(v)), Some(Ok(bound))) => v.cmp(&bound) == want,
            _ => false,
        };
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(contains),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan => compare(std::cmp::Ordering::Greater),
            Operator::LessThan => compare(std::cmp::Ordering::Less),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Equals => write!(f, "{}={first}", self.key),
            Operator::NotEquals => write!(f, "{}!={first}", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::In | Operator::NotIn => {
                let op = if self.operator == Operator::In {
                    "in"
                } else {
                    "notin"
                };
                write!(f, "{} {op} (", self.key)?;
                for (i, v) in self.values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(v)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A compiled label selector: the parsed string form
/// (`app=web,tier!=db,env in (a,b),env notin (c),!legacy,key`) or the
/// conversion of a [`LabelSelector`].
///
/// Requirements are kept sorted, so equal selectors compare equal however
/// they were written, and `Display` writes the canonical string form that
/// parses back to the same selector. The empty selector matches everything.
///
/// As in Kubernetes, `key in ()` means `key in ("")`. A [`LabelSelector`]
/// with an `In`/`NotIn` expression without values (invalid; rejected by
/// validation) converts to a requirement that matches nothing (`In`) or
/// everything (`NotIn`), as [`LabelSelector::matches`] does.
///
/// ```
/// use ketch_core::{LabelSelector, ObjectMeta, selector::Selector};
/// let sel = Selector::from(&LabelSelector::from_labels([("app", "web")]));
/// assert_eq!(sel.to_string(), "app=web");
/// assert!(sel.matches(&ObjectMeta::default().with_label("app", "web")));
/// assert!("app=web,".parse::<Selector>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector from requirements (sorted on construction).
    pub fn new(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort();
        Self { requirements }
    }

    /// Parses the string form; `""` is the selector that matches everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Parser { s, pos: 0 }.selector()
    }

    /// True when there are no requirements (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement.
    ///
    /// ```
    /// use ketch_core::selector::Selector;
    /// let sel = Selector::parse("tier notin (db),gpu,zone>2").unwrap();
    /// assert!(sel.matches(&[("gpu", "a100"), ("zone", "3")][..]));
    /// assert!(!sel.matches(&[("gpu", "a100"), ("zone", "1")][..]));
    /// ```
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl From<&LabelSelector> for Selector {
    fn from(ls: &LabelSelector) -> Self {
        let labels = ls
            .match_labels
            .iter()
            .map(|(k, v)| Requirement::new(k.as_str(), Operator::Equals, [v.as_str()]));
        let expressions = ls.match_expressions.iter().map(|r| {
            let op = match r.operator {
                LabelSelectorOperator::In => Operator::In,
                LabelSelectorOperator::NotIn => Operator::NotIn,
                LabelSelectorOperator::Exists => Operator::Exists,
                LabelSelectorOperator::DoesNotExist => Operator::DoesNotExist,
            };
            let values: &[String] = match op {
                Operator::Exists | Operator::DoesNotExist => &[],
                _ => &r.values,
            };
            Requirement::new(r.key.as_str(), op, values.iter().map(String::as_str))
        });
        Selector::new(labels.chain(expressions))
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// A token of the label selector string form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Comma,
    Eq,
    DoubleEq,
    NotEq,
    Bang,
    Open,
    Close,
    Gt,
    Lt,
    End,
}

fn is_special(c: char) -> bool {
    matches!(c, ',' | '=' | '!' | '(' | ')' | '<' | '>') || c.is_whitespace()
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// The next token and its start offset, without consuming it.
    fn peek(&self) -> (Token<'a>, usize, usize) {
        let rest = &self.s[self.pos..];
        let trimmed = rest.trim_start();
        let start = self.pos + (rest.len() - trimmed.len());
        let mut chars = trimmed.chars();
        let (tok, len) = match chars.next() {
            None => (Token::End, 0),
            Some(',') => (Token::Comma, 1),
            Some('(') => (Token::Open, 1),
            Some(')') => (Token::Close, 1),
            Some('<') => (Token::Lt, 1),
            Some('>') => (Token::Gt, 1),
            Some('=') if trimmed.starts_with("==") => (Token::DoubleEq, 2),
            Some('=') => (Token::Eq, 1),
            Some('!') if trimmed.starts_with("!=") => (Token::NotEq, 2),
            Some('!') => (Token::Bang, 1),
            Some(_) => {
                let len = trimmed.find(is_special).unwrap_or(trimmed.len());
                (Token::Word(&trimmed[..len]), len)
            }
        };
        (tok, start, start + len)
    }

    fn next(&mut self) -> (Token<'a>, usize) {
        let (tok, start, end) = self.peek();
        self.pos = end;
        (tok, start)
    }

    fn unexpected(&self, tok: Token<'a>, position: usize, expected: &'static str) -> SelectorError {
        let found = match tok {
            Token::End => "end of input".to_string(),
            _ => format!("{:?}", &self.s[position..position + token_len(tok)]),
        };
        SelectorError::UnexpectedToken {
            found,
            position,
            expected,
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().0 == Token::End {
            return Ok(Selector::default());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                (Token::End, _) => break,
                (Token::Comma, _) => {}
                (tok, at) => return Err(self.unexpected(tok, at, "',' or end of input")),
            }
        }
        Ok(Selector::new(requirements))
    }

    fn key(&mut self) -> Result<&'a str, SelectorError> {
        match self.next() {
            (Token::Word(k), _) => {
                check_qualified_name(k).map_err(|reason| SelectorError::InvalidKey {
                    key: k.to_string(),
                    reason,
                })?;
                Ok(k)
            }
            (tok, at) => Err(self.unexpected(tok, at, "a label key")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if let (Token::Bang, _, end) = self.peek() {
            self.pos = end;
            let key = self.key()?;
            return Ok(Requirement::new(
                key,
                Operator::DoesNotExist,
                Vec::<String>::new(),
            ));
        }
        let key = self.key()?;
        let (tok, at, end) = self.peek();
        let op = match tok {
            Token::End | Token::Comma => {
                return Ok(Requirement::new(
                    key,
                    Operator::Exists,
                    Vec::<String>::new(),
                ));
            }
            Token::Eq | Token::DoubleEq => Operator::Equals,
            Token::NotEq => Operator::NotEquals,
            Token::Gt => Operator::GreaterThan,
            Token::Lt => Operator::LessThan,
            Token::Word("in") => Operator::In,
            Token::Word("notin") => Operator::NotIn,
            _ => {
                return Err(self.unexpected(
                    tok,
                    at,
                    "an operator (=, ==, !=, in, notin, >, <), ',' or end of input",
                ));
            }
        };
        self.pos = end;
        match op {
            Operator::In | Operator::NotIn => {
                let values = self.value_set()?;
                Ok(Requirement::new(key, op, values))
            }
            Operator::GreaterThan | Operator::LessThan => {
                let v = self.value()?;
                if v.parse::<i64>().is_err() {
                    return Err(SelectorError::InvalidValue {
                        value: v.to_string(),
                        reason: "must be an integer for '>' and '<'",
                    });
                }
                Ok(Requirement::new(key, op, [v]))
            }
            _ => {
                let v = self.value()?;
                check_value(v)?;
                Ok(Requirement::new(key, op, [v]))
            }
        }
    }

    /// A single value (possibly empty) after `=`, `==`, `!=`, `>` or `<`,
    /// unchecked.
    fn value(&mut self) -> Result<&'a str, SelectorError> {
        match self.peek() {
            (Token::Word(v), _, end) => {
                self.pos = end;
                Ok(v)
            }
            (Token::End | Token::Comma, _, _) => Ok(""),
            (tok, at, _) => Err(self.unexpected(tok, at, "a label value")),
        }
    }

    /// `( v1, v2, ... )`; `()` is the set holding the empty value.
    fn value_set(&mut self) -> Result<Vec<&'a str>, SelectorError> {
        match self.next() {
            (Token::Open, _) => {}
            (tok, at) => return Err(self.unexpected(tok, at, "'('")),
        }
        let mut values = Vec::new();
        loop {
            let v = match self.peek() {
                (Token::Word(v), _, end) => {
                    self.pos = end;
                    check_value(v)?;
                    v
                }
                (Token::Comma | Token::Close, _, _) => "",
                (tok, at, _) => return Err(self.unexpected(tok, at, "a label value, ',' or ')'")),
            };
            values.push(v);
            match self.next() {
                (Token::Comma, _) => {}
                (Token::Close, _) => return Ok(values),
                (tok, at) => return Err(self.unexpected(tok, at, "',' or ')'")),
            }
        }
    }
}

fn token_len(tok: Token<'_>) -> usize {
    match tok {
        Token::Word(w) => w.len(),
        Token::DoubleEq | Token::NotEq => 2,
        Token::End => 0,
        _ => 1,
    }
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    check_label_value(v).map_err(|reason| SelectorError::InvalidValue {
        value: v.to_string(),
        reason,
    })
}

/// A field a [`FieldSelector`] can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `metadata.name` (every kind).
    MetadataName,
    /// `metadata.namespace` (every kind; `""` for cluster-scoped ones).
    MetadataNamespace,
    /// `spec.nodeName` (pods).
    SpecNodeName,
    /// `status.phase` (pods).
    StatusPhase,
}

impl Field {
    /// The field path, e.g. `spec.nodeName`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Field::MetadataName => "metadata.name",
            Field::MetadataNamespace => "metadata.namespace",
            Field::SpecNodeName => "spec.nodeName",
            Field::StatusPhase => "status.phase",
        }
    }

    /// Whether objects of `kind` have this field: every kind has the
    /// metadata fields, only `Pod` has `spec.nodeName` and `status.phase`.
    ///
    /// ```
    /// use ketch_core::selector::Field;
    /// assert!(Field::SpecNodeName.supported_by_kind("Pod"));
    /// assert!(!Field::SpecNodeName.supported_by_kind("Service"));
    /// ```
    pub fn supported_by_kind(&self, kind: &str) -> bool {
        matches!(self, Field::MetadataName | Field::MetadataNamespace) || kind == "Pod"
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Field {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "metadata.name" => Field::MetadataName,
            "metadata.namespace" => Field::MetadataNamespace,
            "spec.nodeName" => Field::SpecNodeName,
            "status.phase" => Field::StatusPhase,
            _ => {
                return Err(SelectorError::UnknownField {
                    field: s.to_string(),
                });
            }
        })
    }
}

/// An object whose fields a [`FieldSelector`] can test.
pub trait Fields {
    /// The value of `field` (`""` when unset), or `None` when objects of this
    /// kind do not have the field.
    fn field(&self, field: Field) -> Option<&str>;
}

impl Fields for ObjectMeta {
    fn field(&self, field: Field) -> Option<&str> {
        match field {
            Field::MetadataName => Some(self.name()),
            Field::MetadataNamespace => Some(self.namespace()),
            _ => None,
        }
    }
}

impl Fields for crate::api::Pod {
    fn field(&self, field: Field) -> Option<&str> {
        use crate::api::PodPhase;
        match field {
            Field::SpecNodeName => Some(self.spec.node_name.as_deref().unwrap_or("")),
            Field::StatusPhase => Some(match self.status.phase {
                None => "",
                Some(PodPhase::Pending) => "Pending",
                Some(PodPhase::Running) => "Running",
                Some(PodPhase::Succeeded) => "Succeeded",
                Some(PodPhase::Failed) => "Failed",
                Some(PodPhase::Unknown) => "Unknown",
            }),
            _ => self.metadata.field(field),
        }
    }
}

macro_rules! metadata_fields {
    ($($kind:ty),*) => {$(
        impl Fields for $kind {
            fn field(&self, field: Field) -> Option<&str> {
                self.metadata.field(field)
            }
        }
    )*};
}
metadata_fields!(
    crate::api::Namespace,
    crate::api::Node,
    crate::api::Service,
    crate::api::Endpoints,
    crate::api::ReplicaSet,
    crate::api::Deployment,
    crate::api::Lease,
    crate::api::Event,
    crate::DynamicObject
);

/// One term of a [`FieldSelector`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field tested.
    pub field: Field,
    /// `true` for `!=`, `false` for `=` / `==`.
    pub negated: bool,
    /// The value compared with (may be empty).
    pub value: String,
}

/// A field selector such as `metadata.name=web,spec.nodeName!=,status.phase=Running`.
///
/// Terms are ANDed; `=` and `==` mean equal, `!=` not equal; an empty value
/// stands for an unset field. A `\` escapes `,`, `=`, `!` and `\` inside
/// values. An empty selector matches everything.
///
/// ```
/// use ketch_core::{ObjectMeta, api::Pod, selector::FieldSelector};
/// let unscheduled: FieldSelector = "spec.nodeName=".parse().unwrap();
/// let pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// assert!(unscheduled.matches(&pod));
/// let err = "spec.host=a".parse::<FieldSelector>().unwrap_err();
/// assert!(err.to_string().starts_with(r#"unknown field "spec.host""#));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector of one term, `field=value`.
    pub fn equals(field: Field, value: impl Into<String>) -> Self {
        Self {
            requirements: vec![FieldRequirement {
                field,
                negated: false,
                value: value.into(),
            }],
        }
    }

    /// Adds a term (builder style).
    pub fn and(mut self, field: Field, negated: bool, value: impl Into<String>) -> Self {
        self.requirements.push(FieldRequirement {
            field,
            negated,
            value: value.into(),
        });
        self
    }

    /// The terms, in the order written.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for term in split_unescaped(s, ',') {
            requirements.push(parse_field_term(term)?);
        }
        Ok(Self { requirements })
    }

    /// Checks that objects of `kind` have every field the selector tests.
    ///
    /// ```
    /// use ketch_core::selector::FieldSelector;
    /// let sel = FieldSelector::parse("spec.nodeName=n1").unwrap();
    /// assert!(sel.check_kind("Pod").is_ok());
    /// assert_eq!(
    ///     sel.check_kind("Service").unwrap_err().to_string(),
    ///     "field spec.nodeName is not supported for kind Service"
    /// );
    /// ```
    pub fn check_kind(&self, kind: &str) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !r.field.supported_by_kind(kind))
        {
            Some(r) => Err(SelectorError::UnsupportedField {
                field: r.field,
                kind: kind.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `obj` satisfies every term. A term on a field the object does
    /// not have never matches.
    pub fn matches<F: Fields + ?Sized>(&self, obj: &F) -> bool {
        self.requirements.iter().all(|r| match obj.field(r.field) {
            Some(v) => (v == r.value) != r.negated,
            None => false,
        })
    }
}

/// Splits at `sep` characters not preceded by an escaping `\`.
fn split_unescaped(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut escaped = false;
    let mut parts = Vec::new();
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

fn parse_field_term(term: &str) -> Result<FieldRequirement, SelectorError> {
    let invalid = || SelectorError::InvalidFieldTerm {
        term: term.to_string(),
    };
    let (op_at, op_len, negated) = term
        .char_indices()
        .find_map(|(i, c)| match c {
            '!' if term[i..].starts_with("!=") => Some((i, 2, true)),
            '=' if term[i..].starts_with("==") => Some((i, 2, false)),
            '=' => Some((i, 1, false)),
            _ => None,
        })
        .ok_or_else(invalid)?;
    let field: Field = term[..op_at].trim().parse()?;
    let value = unescape(term[op_at + op_len..].trim()).ok_or_else(invalid)?;
    Ok(FieldRequirement {
        field,
        negated,
        value,
    })
}

/// Removes escaping backslashes; `None` on a dangling `\`, an escape of any
/// other character, or an unescaped `=` / `!`.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | ',' | '=' | '!') => out.push(e),
                _ => return None,
            },
            '=' | '!' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(r.field.as_str())?;
            f.write_str(if r.negated { "!=" } else { "=" })?;
            for c in r.value.chars() {
                if matches!(c, '\\' | ',' | '=' | '!') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Pod, PodPhase};
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_matching_table() {
        let expr = |key: &str, operator, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        use LabelSelectorOperator::*;
        let sel = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![
                expr("env", In, &["prod", "staging"]),
                expr("tier", NotIn, &["db"]),
                expr("team", Exists, &[]),
                expr("legacy", DoesNotExist, &[]),
            ],
        };
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("app", "web"), ("env", "prod"), ("team", "x")], true),
            (
                &[
                    ("app", "web"),
                    ("env", "staging"),
                    ("team", "x"),
                    ("tier", "fe"),
                ],
                true,
            ),
            (&[("app", "db"), ("env", "prod"), ("team", "x")], false),
            (&[("env", "prod"), ("team", "x")], false),
            (&[("app", "web"), ("env", "dev"), ("team", "x")], false),
            (&[("app", "web"), ("team", "x")], false),
            (
                &[
                    ("app", "web"),
                    ("env", "prod"),
                    ("team", "x"),
                    ("tier", "db"),
                ],
                false,
            ),
            (&[("app", "web"), ("env", "prod")], false),
            (
                &[
                    ("app", "web"),
                    ("env", "prod"),
                    ("team", "x"),
                    ("legacy", ""),
                ],
                false,
            ),
        ];
        let compiled = Selector::from(&sel);
        for (pairs, want) in cases {
            let l = labels(pairs);
            assert_eq!(sel.matches(&l), *want, "{pairs:?}");
            assert_eq!(compiled.matches(&l), *want, "compiled {pairs:?}");
        }
        assert_eq!(
            compiled.to_string(),
            "app=web,env in (prod,staging),!legacy,team,tier notin (db)"
        );
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(Selector::everything().matches(&labels(&[("a", "b")])));
        // An In without values matches nothing, a NotIn without values everything.
        let empty_in = LabelSelector {
            match_expressions: vec![expr("a", In, &[])],
            ..LabelSelector::default()
        };
        assert!(!empty_in.matches(&labels(&[("a", "")])));
        assert!(!Selector::from(&empty_in).matches(&labels(&[("a", "x")])));
    }

    #[test]
    fn parses_and_formats_the_string_form() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("  ", ""),
            ("app=web", "app=web"),
            ("app==web", "app=web"),
            (" app = web , tier != db ", "app=web,tier!=db"),
            ("env in (b, a,a)", "env in (a,b)"),
            ("env notin (c)", "env notin (c)"),
            ("!legacy", "!legacy"),
            ("key", "key"),
            ("x=", "x="),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("example.com/gpu>1,zone<10", "example.com/gpu>1,zone<10"),
            (
                "app=web,tier!=db,env in (a,b),env notin (c),!legacy,key",
                "app=web,env in (a,b),env notin (c),key,!legacy,tier!=db",
            ),
        ];
        for (input, canonical) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.to_string(), *canonical, "{input}");
            assert_eq!(Selector::parse(canonical).unwrap(), sel);
        }
        assert!(
            Selector::parse("x in ()")
                .unwrap()
                .matches(&labels(&[("x", "")]))
        );
    }

    #[test]
    fn parse_errors_name_the_token() {
        let cases: &[(&str, &str)] = &[
            (
                "app=web,",
                "invalid selector: unexpected end of input at position 8, expected a label key",
            ),
            (
                "app=web tier=db",
                r#"invalid selector: unexpected "tier" at position 8, expected ',' or end of input"#,
            ),
            (
                "env in a",
                r#"invalid selector: unexpected "a" at position 7, expected '('"#,
            ),
            (
                "env in (a",
                "invalid selector: unexpected end of input at position 9, expected ',' or ')'",
            ),
            (
                "env in (a b)",
                r#"invalid selector: unexpected "b" at position 10, expected ',' or ')'"#,
            ),
            (
                "=web",
                r#"invalid selector: unexpected "=" at position 0, expected a label key"#,
            ),
            (
                "app=(",
                r#"invalid selector: unexpected "(" at position 4, expected a label value"#,
            ),
            (
                "a b",
                r#"invalid selector: unexpected "b" at position 2, expected an operator (=, ==, !=, in, notin, >, <), ',' or end of input"#,
            ),
            (
                "-app=x",
                r#"invalid label key "-app": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"#,
            ),
            (
                "app=-x",
                r#"invalid label value "-x": must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"#,
            ),
            (
                "zone>a",
                r#"invalid label value "a": must be an integer for '>' and '<'"#,
            ),
        ];
        for (input, message) in cases {
            let err = Selector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), *message, "{input}");
        }
    }

    #[test]
    fn field_selectors_parse_match_and_reject_unknown_fields() {
        let mut pod = Pod {
            metadata: ObjectMeta::named("default", "web"),
            ..Pod::default()
        };
        let sel =
            FieldSelector::parse("metadata.name=web,spec.nodeName!=,status.phase=Running").unwrap();
        assert_eq!(
            sel.to_string(),
            "metadata.name=web,spec.nodeName!=,status.phase=Running"
        );
        assert!(!sel.matches(&pod));
        pod.spec.node_name = Some("n1".into());
        pod.status.phase = Some(PodPhase::Running);
        assert!(sel.matches(&pod));
        assert!(
            FieldSelector::parse("metadata.namespace==default")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace=other")
                .unwrap()
                .matches(&pod)
        );
        assert!(FieldSelector::parse("").unwrap().matches(&pod));

        let node = crate::api::Node {
            metadata: ObjectMeta::cluster_named("n1"),
            ..Default::default()
        };
        assert!(
            FieldSelector::parse("metadata.name=n1")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName!=x")
                .unwrap()
                .matches(&node)
        );

        let escaped = FieldSelector::parse(r"metadata.name=a\,b\=c").unwrap();
        assert_eq!(escaped.requirements()[0].value, "a,b=c");
        assert_eq!(escaped.to_string(), r"metadata.name=a\,b\=c");

        let errors: &[(&str, &str)] = &[
            (
                "spec.foo=x",
                r#"unknown field "spec.foo" in field selector (supported: metadata.name, metadata.namespace, spec.nodeName, status.phase)"#,
            ),
            (
                "metadata.name",
                r#"invalid field selector term "metadata.name": expected <field>=<value>, <field>==<value> or <field>!=<value>"#,
            ),
            (
                "metadata.name=a,",
                r#"invalid field selector term "": expected <field>=<value>, <field>==<value> or <field>!=<value>"#,
            ),
            (
                "metadata.name=a=b",
                r#"invalid field selector term "metadata.name=a=b": expected <field>=<value>, <field>==<value> or <field>!=<value>"#,
            ),
            (
                r"metadata.name=a\",
                r#"invalid field selector term "metadata.name=a\\": expected <field>=<value>, <field>==<value> or <field>!=<value>"#,
            ),
        ];
        for (input, message) in errors {
            assert_eq!(
                FieldSelector::parse(input).unwrap_err().to_string(),
                *message,
                "{input}"
            );
        }
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]([a-z0-9._-]{0,8}[a-z0-9])?",
            "[a-z]{1,5}\\.(io|com)/[A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?",
        ]
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        "([A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?)?"
    }

    fn requirement_strategy() -> impl Strategy<Value = Requirement> {
        (
            key_strategy(),
            0u8..8,
            proptest::collection::vec(value_strategy(), 1..4),
            any::<i32>(),
        )
            .prop_map(|(key, op, values, n)| match op {
                0 => Requirement::new(key, Operator::Equals, [values[0].clone()]),
                1 => Requirement::new(key, Operator::NotEquals, [values[0].clone()]),
                2 => Requirement::new(key, Operator::In, values),
                3 => Requirement::new(key, Operator::NotIn, values),
                4 => Requirement::new(key, Operator::Exists, Vec::<String>::new()),
                5 => Requirement::new(key, Operator::DoesNotExist, Vec::<String>::new()),
                6 => Requirement::new(key, Operator::GreaterThan, [n.to_string()]),
                _ => Requirement::new(key, Operator::LessThan, [n.to_string()]),
            })
    }

    proptest! {
        #[test]
        fn selector_parse_of_format_is_identity(reqs in proptest::collection::vec(requirement_strategy(), 0..6)) {
            let sel = Selector::new(reqs);
            let text = sel.to_string();
            prop_assert_eq!(Selector::parse(&text), Ok(sel));
        }

        #[test]
        fn label_selector_and_compiled_selector_agree(
            match_labels in proptest::collection::btree_map("[a-c]", "[x-z]", 0..3),
            exprs in proptest::collection::vec(("[a-c]", 0u8..4, proptest::collection::vec("[x-z]", 1..3)), 0..3),
            obj in proptest::collection::btree_map("[a-d]", "[w-z]", 0..4),
        ) {
            let ls = LabelSelector {
                match_labels,
                match_expressions: exprs.into_iter().map(|(key, op, values)| {
                    let operator = [LabelSelectorOperator::In, LabelSelectorOperator::NotIn,
                        LabelSelectorOperator::Exists, LabelSelectorOperator::DoesNotExist][op as usize];
                    let values = if op < 2 { values } else { Vec::new() };
                    LabelSelectorRequirement { key, operator, values }
                }).collect(),
            };
            let sel = Selector::from(&ls);
            prop_assert_eq!(ls.matches(&obj), sel.matches(&obj));
            let reparsed = Selector::parse(&sel.to_string()).unwrap();
            prop_assert_eq!(reparsed.matches(&obj), sel.matches(&obj));
        }

        #[test]
        fn no_selector_input_panics(s in "\\PC{0,40}") {
            let _ = Selector::parse(&s);
            let _ = FieldSelector::parse(&s);
        }

        #[test]
        fn no_selector_shaped_input_panics(s in "[a-z!=(), <>in/.-]{0,30}") {
            if let Ok(sel) = Selector::parse(&s) {
                prop_assert_eq!(Selector::parse(&sel.to_string()), Ok(sel));
            }
        }

        #[test]
        fn field_selector_parse_of_format_is_identity(
            terms in proptest::collection::vec((0usize..4, any::<bool>(), "[a-z,=!\\\\ ]{0,6}"), 0..4)
        ) {
            let fields = [Field::MetadataName, Field::MetadataNamespace, Field::SpecNodeName, Field::StatusPhase];
            let sel = terms.into_iter().fold(FieldSelector::everything(), |s, (f, negated, value)| {
                s.and(fields[f], negated, value.trim().to_string())
            });
            let text = sel.to_string();
            prop_assert_eq!(FieldSelector::parse(&text), Ok(sel));
        }
    }
}
