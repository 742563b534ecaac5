//! NodeAffinity: a pod's `nodeSelector` and required node affinity filter
//! nodes (labels via `matchExpressions`, the node name via `matchFields` on
//! `metadata.name`); preferred terms score them. When every required term
//! pins `metadata.name` with `In`, PreFilter narrows the cycle to those
//! nodes so the others are never filtered.

use std::collections::HashSet;
use std::sync::Arc;

use ketch_core::api::{NodeSelectorOperator, PreferredSchedulingTerm};
use serde::{Deserialize, Serialize};

use super::helper::{
    CompiledNodeSelector, CompiledNodeTerm, NODE_NAME_FIELD, RequiredNodeAffinity, normalize_to_max,
};
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, NodeScore, Plugin,
    PluginError, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Snapshot,
    Status,
};

/// The reason a node fails the pod's own affinity or selector.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// The reason a node fails the scheduler-enforced affinity.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
/// The reason no node can match: the required terms pin disjoint names.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

/// Arguments of NodeAffinity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeAffinityArgs {
    /// Affinity every pod of the profile must also satisfy (required) or
    /// prefers (preferred).
    #[serde(default)]
    pub added_affinity: Option<ketch_core::api::NodeAffinity>,
}

#[derive(Clone, Debug)]
struct PreFilterState {
    required: Arc<RequiredNodeAffinity>,
}

#[derive(Clone, Debug)]
struct PreScoreState {
    preferred: Arc<Vec<(i64, CompiledNodeTerm)>>,
}

/// The NodeAffinity plugin.
#[derive(Clone, Debug, Default)]
pub struct NodeAffinity {
    added_required: Option<CompiledNodeSelector>,
    added_preferred: Vec<(i64, CompiledNodeTerm)>,
}

fn compile_preferred(terms: &[PreferredSchedulingTerm]) -> Vec<(i64, CompiledNodeTerm)> {
    terms
        .iter()
        .filter(|t| t.weight != 0)
        .filter_map(|t| CompiledNodeTerm::new(&t.preference).map(|c| (i64::from(t.weight), c)))
        .collect()
}

impl NodeAffinity {
    /// The registry name.
    pub const NAME: &'static str = "NodeAffinity";

    /// Builds the plugin; preferred weights of the added affinity must be in
    /// 1..=100.
    pub fn new(args: NodeAffinityArgs) -> Result<Self, PluginError> {
        let Some(added) = args.added_affinity else {
            return Ok(Self::default());
        };
        for (i, t) in added
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            if !(1..=100).contains(&t.weight) {
                return Err(PluginError::InvalidArgs {
                    plugin: Self::NAME.into(),
                    message: format!(
                        "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].weight: {} not in 1..=100",
                        t.weight
                    ),
                });
            }
        }
        Ok(Self {
            added_required: added
                .required_during_scheduling_ignored_during_execution
                .as_ref()
                .map(CompiledNodeSelector::new),
            added_preferred: compile_preferred(
                &added.preferred_during_scheduling_ignored_during_execution,
            ),
        })
    }
}

/// The node names the required terms pin, if every term pins some:
/// `Some(empty)` when they conflict, `None` when any term leaves names open.
fn pinned_node_names(pod: &PodInfo) -> Option<HashSet<String>> {
    let terms = &pod
        .pod
        .spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names: HashSet<String> = HashSet::new();
    for t in terms {
        let mut term_names: Option<HashSet<&str>> = None;
        for r in &t.match_fields {
            if r.key == NODE_NAME_FIELD && r.operator == NodeSelectorOperator::In {
                let s: HashSet<&str> = r.values.iter().map(String::as_str).collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).copied().collect(),
                });
            }
        }
        names.extend(term_names?.into_iter().map(str::to_string));
    }
    Some(names)
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Node,
            ActionType::ADD | ActionType::UPDATE_NODE_LABEL,
        )]
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let required = RequiredNodeAffinity::from_pod(&pod.pod);
        if required.is_empty() && self.added_required.is_none() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write(PreFilterState {
            required: Arc::new(required),
        });
        match pinned_node_names(pod) {
            None => (PreFilterResult::all_nodes(), Status::success()),
            Some(names) if names.is_empty() => (
                PreFilterResult::all_nodes(),
                Status::unresolvable(ERR_REASON_CONFLICT),
            ),
            Some(names) => (PreFilterResult::only(names), Status::success()),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        if let Some(added) = &self.added_required
            && !added.matches(n)
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        let ok = match state.read::<PreFilterState>() {
            Some(s) => s.required.matches(n),
            None => RequiredNodeAffinity::from_pod(&pod.pod).matches(n),
        };
        if ok {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo]) -> Status {
        let preferred = pod
            .pod
            .spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .map(|na| compile_preferred(&na.preferred_during_scheduling_ignored_during_execution))
            .unwrap_or_default();
        if preferred.is_empty() && self.added_preferred.is_empty() {
            return Status::skip();
        }
        state.write(PreScoreState {
            preferred: Arc::new(preferred),
        });
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(n) = node.node() else {
            return Err(Status::error("node not found"));
        };
        let sum = |terms: &[(i64, CompiledNodeTerm)]| -> i64 {
            terms
                .iter()
                .filter(|(_, t)| t.matches(n))
                .map(|(w, _)| *w)
                .sum()
        };
        let own = match state.read::<PreScoreState>() {
            Some(s) => sum(&s.preferred),
            None => {
                let terms = pod
                    .pod
                    .spec
                    .affinity
                    .as_ref()
                    .and_then(|a| a.node_affinity.as_ref())
                    .map(|na| {
                        compile_preferred(&na.preferred_during_scheduling_ignored_during_execution)
                    })
                    .unwrap_or_default();
                sum(&terms)
            }
        };
        Ok(own + sum(&self.added_preferred))
    }

    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        normalize_to_max(false, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::api::NodeSelectorOperator::*;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, name_term, node_term};

    fn filter(plugin: &NodeAffinity, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut state = CycleState::default();
        let (_, s) = plugin.pre_filter(&mut state, pod, &Snapshot::default());
        if s.is_skip() {
            return Status::success();
        }
        assert!(s.is_success(), "{s}");
        plugin.filter(&state, pod, node)
    }

    #[test]
    fn filter_table() {
        let node = NodeBuilder::new("n1")
            .label("zone", "a")
            .label("disk", "ssd")
            .build();
        let cases = [
            (PodBuilder::new("p").build(), true),
            (
                PodBuilder::new("p").node_selector("zone", "a").build(),
                true,
            ),
            (
                PodBuilder::new("p").node_selector("zone", "b").build(),
                false,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![node_term(&[("zone", In, &["b", "a"])])])
                    .build(),
                true,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![
                        node_term(&[("zone", In, &["b"])]),
                        node_term(&[("disk", Exists, &[])]),
                    ])
                    .build(),
                true,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![node_term(&[
                        ("zone", In, &["a"]),
                        ("disk", NotIn, &["ssd"]),
                    ])])
                    .build(),
                false,
            ),
            (
                PodBuilder::new("p")
                    .node_selector("zone", "b")
                    .required_node_terms(vec![node_term(&[("zone", In, &["a"])])])
                    .build(),
                false,
            ),
            (
                PodBuilder::new("p").required_node_terms(vec![]).build(),
                false,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![name_term(&["n1"])])
                    .build(),
                true,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![name_term(&["n2"])])
                    .build(),
                false,
            ),
        ];
        for (i, (pod, ok)) in cases.iter().enumerate() {
            let s = filter(&NodeAffinity::default(), pod, &node);
            assert_eq!(s.is_success(), *ok, "case {i}: {s}");
            if !ok {
                assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
                assert_eq!(s.reasons()[0], ERR_REASON_POD);
            }
        }
    }

    #[test]
    fn pre_filter_narrows_to_pinned_names() {
        let cases: Vec<(PodInfo, Option<Vec<&str>>, Code)> = vec![
            (PodBuilder::new("p").build(), None, Code::Skip),
            (
                PodBuilder::new("p").node_selector("a", "b").build(),
                None,
                Code::Success,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![name_term(&["n1"])])
                    .build(),
                Some(vec!["n1"]),
                Code::Success,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![name_term(&["n1"]), name_term(&["n2", "n3"])])
                    .build(),
                Some(vec!["n1", "n2", "n3"]),
                Code::Success,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![name_term(&["n1"]), node_term(&[("z", Exists, &[])])])
                    .build(),
                None,
                Code::Success,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![{
                        let mut t = name_term(&["n1", "n2"]);
                        t.match_fields.extend(name_term(&["n2", "n3"]).match_fields);
                        t
                    }])
                    .build(),
                Some(vec!["n2"]),
                Code::Success,
            ),
            (
                PodBuilder::new("p")
                    .required_node_terms(vec![{
                        let mut t = name_term(&["n1"]);
                        t.match_fields.extend(name_term(&["n2"]).match_fields);
                        t
                    }])
                    .build(),
                None,
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (i, (pod, want, code)) in cases.iter().enumerate() {
            let mut state = CycleState::default();
            let (r, s) = NodeAffinity::default().pre_filter(&mut state, pod, &Snapshot::default());
            assert_eq!(s.code(), *code, "case {i}");
            if s.is_success() {
                let want: Option<HashSet<String>> = want
                    .as_ref()
                    .map(|w| w.iter().map(|s| s.to_string()).collect());
                assert_eq!(r.node_names, want, "case {i}");
            }
        }
    }

    #[test]
    fn added_affinity_is_enforced() {
        let plugin = NodeAffinity::new(NodeAffinityArgs {
            added_affinity: Some(ketch_core::api::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(
                    ketch_core::api::NodeSelector {
                        node_selector_terms: vec![node_term(&[("pool", In, &["batch"])])],
                    },
                ),
                preferred_during_scheduling_ignored_during_execution: vec![],
            }),
        })
        .expect("valid");
        let pod = PodBuilder::new("p").build();
        let s = filter(&plugin, &pod, &NodeBuilder::new("n").build());
        assert_eq!(s.reasons()[0], ERR_REASON_ENFORCED);
        assert!(
            filter(
                &plugin,
                &pod,
                &NodeBuilder::new("n").label("pool", "batch").build()
            )
            .is_success()
        );
        let bad = serde_json::json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}});
        let args: NodeAffinityArgs =
            crate::framework::decode_args(NodeAffinity::NAME, Some(&bad)).expect("decodes");
        assert!(NodeAffinity::new(args).is_err());
    }

    #[test]
    fn preferred_terms_score_and_normalize() {
        let pod = PodBuilder::new("p")
            .preferred_node_term(5, node_term(&[("zone", In, &["a"])]))
            .preferred_node_term(20, node_term(&[("disk", In, &["ssd"])]))
            .build();
        let nodes = [
            NodeBuilder::new("n1").build(),
            NodeBuilder::new("n2").label("zone", "a").build(),
            NodeBuilder::new("n3")
                .label("zone", "a")
                .label("disk", "ssd")
                .build(),
        ];
        let plugin = NodeAffinity::default();
        let mut state = CycleState::default();
        assert!(plugin.pre_score(&mut state, &pod, &[]).is_success());
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .enumerate()
            .map(|(index, n)| NodeScore {
                index,
                score: plugin.score(&state, &pod, n).expect("score"),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 5, 25]
        );
        plugin.normalize_scores(&state, &pod, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 20, 100]
        );
        let mut state = CycleState::default();
        assert!(
            plugin
                .pre_score(&mut state, &PodBuilder::new("q").build(), &[])
                .is_skip()
        );
    }
}
