//! Matchers shared by several plugins, compiled once per scheduling cycle so
//! that Filter and Score match without allocating: tolerations, label
//! selectors, node selectors, and the default score normalization.

use std::collections::BTreeMap;

use ketch_core::api::{
    Node, NodeSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, Taint,
    TaintEffect, Toleration, TolerationOperator,
};
use ketch_core::selector::{Operator, Requirement};
use ketch_core::{LabelSelector, LabelSelectorOperator, Selector};

use crate::framework::{MAX_NODE_SCORE, NodeScore};

/// The field path node selector `matchFields` may use.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// True if the toleration tolerates the taint: an empty effect matches every
/// effect, an empty key with `Exists` matches every key, `Equal` (the
/// default) compares values.
pub fn toleration_tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.is_some_and(|e| e != taint.effect) {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.unwrap_or_default() {
        TolerationOperator::Exists => true,
        TolerationOperator::Equal => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// True if any of the tolerations tolerates the taint.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| toleration_tolerates(t, taint))
}

/// The first taint with one of `effects` that no toleration tolerates.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[TaintEffect],
) -> Option<&'a Taint> {
    taints
        .iter()
        .find(|t| effects.contains(&t.effect) && !tolerations_tolerate(tolerations, t))
}

/// The labels of a node.
pub fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    &node.metadata.labels
}

/// Rescales `scores` to `0..=max_priority` by the largest score; with
/// `reverse`, high raw scores become low (kube-scheduler's
/// `DefaultNormalizeScore`).
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [NodeScore]) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if max == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max_priority;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = max_priority * s.score / max;
        if reverse {
            v = max_priority - v;
        }
        s.score = v;
    }
}

/// [`default_normalize_score`] with [`MAX_NODE_SCORE`].
pub fn normalize_to_max(reverse: bool, scores: &mut [NodeScore]) {
    default_normalize_score(MAX_NODE_SCORE, reverse, scores)
}

/// Builds a requirement, rejecting the malformed ones Kubernetes rejects:
/// `In`/`NotIn` without values, `Exists`/`DoesNotExist` with values, `Gt`/`Lt`
/// without exactly one integer.
fn requirement(key: &str, op: Operator, values: &[String]) -> Option<Requirement> {
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => None,
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => None,
        Operator::GreaterThan | Operator::LessThan
            if values.len() != 1 || values[0].parse::<i64>().is_err() =>
        {
            None
        }
        _ => Some(Requirement::new(key, op, values.iter().map(String::as_str))),
    }
}

/// A compiled pod label selector (a [`Selector`] of `ketch_core`). A missing
/// selector matches nothing, an empty one everything, and a malformed one
/// (`In` without values) nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledLabelSelector {
    nothing: bool,
    selector: Selector,
}

impl CompiledLabelSelector {
    /// Compiles an optional selector with Kubernetes' meaning of `None`.
    pub fn new(selector: Option<&LabelSelector>) -> Self {
        let Some(sel) = selector else {
            return Self::nothing();
        };
        let mut requirements =
            Vec::with_capacity(sel.match_labels.len() + sel.match_expressions.len());
        for (k, v) in &sel.match_labels {
            requirements.push(Requirement::new(k.as_str(), Operator::Equals, [v.as_str()]));
        }
        for e in &sel.match_expressions {
            let op = match e.operator {
                LabelSelectorOperator::In => Operator::In,
                LabelSelectorOperator::NotIn => Operator::NotIn,
                LabelSelectorOperator::Exists => Operator::Exists,
                LabelSelectorOperator::DoesNotExist => Operator::DoesNotExist,
            };
            match requirement(&e.key, op, &e.values) {
                Some(r) => requirements.push(r),
                None => return Self::nothing(),
            }
        }
        Self {
            nothing: false,
            selector: Selector::new(requirements),
        }
    }

    /// The selector that matches nothing.
    pub fn nothing() -> Self {
        Self {
            nothing: true,
            selector: Selector::everything(),
        }
    }

    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self {
            nothing: false,
            selector: Selector::everything(),
        }
    }

    /// Adds `key=value` (for `matchLabelKeys`).
    pub fn and_equals(&mut self, key: &str, value: &str) {
        let mut reqs = self.selector.requirements().to_vec();
        reqs.push(Requirement::new(key, Operator::Equals, [value]));
        self.selector = Selector::new(reqs);
    }

    /// True if the selector matches nothing at all.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// True if the labels match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.selector.matches(labels)
    }
}

/// One compiled node selector term: label requirements and `metadata.name`
/// field requirements, ANDed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledNodeTerm {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl CompiledNodeTerm {
    /// Compiles a term; `None` if it is empty or malformed (it then matches
    /// no node, as in Kubernetes).
    pub fn new(term: &NodeSelectorTerm) -> Option<Self> {
        if term.match_expressions.is_empty() && term.match_fields.is_empty() {
            return None;
        }
        let labels = term
            .match_expressions
            .iter()
            .map(compile_node_requirement)
            .collect::<Option<Vec<_>>>()?;
        let fields = term
            .match_fields
            .iter()
            .map(|r| {
                if r.key != NODE_NAME_FIELD {
                    return None;
                }
                match r.operator {
                    NodeSelectorOperator::In | NodeSelectorOperator::NotIn => {
                        compile_node_requirement(r)
                    }
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { labels, fields })
    }

    /// True if the node matches every requirement.
    pub fn matches(&self, node: &Node) -> bool {
        let name = node.metadata.name();
        let fields = [(NODE_NAME_FIELD, name)];
        self.labels.iter().all(|r| r.matches(&node.metadata.labels))
            && self.fields.iter().all(|r| r.matches(&fields[..]))
    }
}

fn compile_node_requirement(r: &NodeSelectorRequirement) -> Option<Requirement> {
    let op = match r.operator {
        NodeSelectorOperator::In => Operator::In,
        NodeSelectorOperator::NotIn => Operator::NotIn,
        NodeSelectorOperator::Exists => Operator::Exists,
        NodeSelectorOperator::DoesNotExist => Operator::DoesNotExist,
        NodeSelectorOperator::Gt => Operator::GreaterThan,
        NodeSelectorOperator::Lt => Operator::LessThan,
    };
    requirement(&r.key, op, &r.values)
}

/// A compiled required node selector: ORed terms. Malformed terms are
/// dropped; a selector without valid terms matches no node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledNodeSelector {
    terms: Vec<CompiledNodeTerm>,
}

impl CompiledNodeSelector {
    /// Compiles the terms of a node selector.
    pub fn new(selector: &NodeSelector) -> Self {
        Self {
            terms: selector
                .node_selector_terms
                .iter()
                .filter_map(CompiledNodeTerm::new)
                .collect(),
        }
    }

    /// True if the node matches at least one term.
    pub fn matches(&self, node: &Node) -> bool {
        self.terms.iter().any(|t| t.matches(node))
    }
}

/// What a pod requires of a node: its `nodeSelector` and its required node
/// affinity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredNodeAffinity {
    node_selector: Vec<(String, String)>,
    affinity: Option<CompiledNodeSelector>,
}

impl RequiredNodeAffinity {
    /// Compiles the pod's `nodeSelector` and required node affinity.
    pub fn from_pod(pod: &ketch_core::api::Pod) -> Self {
        let affinity = pod
            .spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(CompiledNodeSelector::new);
        Self {
            node_selector: pod
                .spec
                .node_selector
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            affinity,
        }
    }

    /// True if the pod constrains nodes at all.
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.affinity.is_none()
    }

    /// True if the node satisfies the pod's requirements.
    pub fn matches(&self, node: &Node) -> bool {
        let labels = &node.metadata.labels;
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|x| x == v))
            && self.affinity.as_ref().is_none_or(|s| s.matches(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, node_term};

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect,
            time_added: None,
        }
    }

    fn tol(
        key: &str,
        op: TolerationOperator,
        value: &str,
        effect: Option<TaintEffect>,
    ) -> Toleration {
        Toleration {
            key: Some(key.into()).filter(|v: &String| !v.is_empty()),
            operator: Some(op),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect,
            toleration_seconds: None,
        }
    }

    #[test]
    fn toleration_matching_table() {
        use TaintEffect::*;
        use TolerationOperator::*;
        let cases = [
            (
                tol("k", Equal, "v", Some(NoSchedule)),
                taint("k", "v", NoSchedule),
                true,
            ),
            (tol("k", Equal, "v", None), taint("k", "v", NoExecute), true),
            (
                tol("k", Equal, "w", None),
                taint("k", "v", NoSchedule),
                false,
            ),
            (
                tol("k", Exists, "", None),
                taint("k", "v", NoSchedule),
                true,
            ),
            (
                tol("", Exists, "", None),
                taint("any", "v", NoExecute),
                true,
            ),
            (
                tol("k", Equal, "v", Some(PreferNoSchedule)),
                taint("k", "v", NoSchedule),
                false,
            ),
            (
                tol("j", Exists, "", None),
                taint("k", "v", NoSchedule),
                false,
            ),
        ];
        for (i, (t, taint, want)) in cases.iter().enumerate() {
            assert_eq!(toleration_tolerates(t, taint), *want, "case {i}");
        }
    }

    #[test]
    fn label_selector_missing_matches_nothing_and_empty_everything() {
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert!(!CompiledLabelSelector::new(None).matches(&labels));
        assert!(CompiledLabelSelector::new(Some(&LabelSelector::default())).matches(&labels));
        assert!(
            CompiledLabelSelector::new(Some(&LabelSelector::from_labels([("a", "1")])))
                .matches(&labels)
        );
        assert!(
            !CompiledLabelSelector::new(Some(&LabelSelector::from_labels([("a", "2")])))
                .matches(&labels)
        );
    }

    #[test]
    fn node_term_operators_table() {
        let node = NodeBuilder::new("n1")
            .label("zone", "a")
            .label("gen", "5")
            .build();
        let n = node.node().expect("node").clone();
        let cases = [
            (
                node_term(&[("zone", NodeSelectorOperator::In, &["a", "b"])]),
                true,
            ),
            (
                node_term(&[("zone", NodeSelectorOperator::NotIn, &["a"])]),
                false,
            ),
            (
                node_term(&[("zone", NodeSelectorOperator::Exists, &[])]),
                true,
            ),
            (
                node_term(&[("zone", NodeSelectorOperator::DoesNotExist, &[])]),
                false,
            ),
            (
                node_term(&[("gen", NodeSelectorOperator::Gt, &["4"])]),
                true,
            ),
            (
                node_term(&[("gen", NodeSelectorOperator::Lt, &["4"])]),
                false,
            ),
            (
                node_term(&[("gen", NodeSelectorOperator::Gt, &["x"])]),
                false,
            ),
            (node_term(&[("zone", NodeSelectorOperator::In, &[])]), false),
        ];
        for (i, (term, want)) in cases.iter().enumerate() {
            let got = CompiledNodeTerm::new(term).is_some_and(|t| t.matches(&n));
            assert_eq!(got, *want, "case {i}");
        }
        let empty = NodeSelectorTerm::default();
        assert!(CompiledNodeTerm::new(&empty).is_none());
    }

    #[test]
    fn normalize_reverse_and_zero() {
        let mut s = vec![
            NodeScore { index: 0, score: 0 },
            NodeScore { index: 1, score: 2 },
            NodeScore { index: 2, score: 4 },
        ];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s.iter().map(|x| x.score).collect::<Vec<_>>(), [100, 50, 0]);
        let mut z = vec![NodeScore { index: 0, score: 0 }];
        default_normalize_score(100, true, &mut z);
        assert_eq!(z[0].score, 100);
        let mut z = vec![NodeScore { index: 0, score: 0 }];
        default_normalize_score(100, false, &mut z);
        assert_eq!(z[0].score, 0);
    }
}
