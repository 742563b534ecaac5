//! ImageLocality: prefers nodes that already have the pod's container
//! images, weighted by image size and by how widely the image is spread
//! (an image on every node says little about this one).

use std::borrow::Cow;

use crate::framework::{
    ClusterEvent, CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreFilterResult, ScorePlugin, Snapshot, Status,
};

const MB: i64 = 1024 * 1024;
/// Below this summed size a node scores 0.
pub const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, above this summed size a node scores 100.
pub const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// Scores nodes by the images they already hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageLocality;

impl ImageLocality {
    /// The registry name.
    pub const NAME: &'static str = "ImageLocality";
}

/// How many nodes the cluster has this cycle (for the spread factor).
#[derive(Clone, Copy, Debug, Default)]
struct TotalNodes(usize);

/// `name` with `:latest` when it has neither tag nor digest.
pub fn normalized_image_name(name: &str) -> Cow<'_, str> {
    let colon = name.rfind(':');
    let slash = name.rfind('/');
    match (colon, slash) {
        (Some(c), Some(s)) if c > s => Cow::Borrowed(name),
        (Some(_), None) => Cow::Borrowed(name),
        _ => Cow::Owned(format!("{name}:latest")),
    }
}

/// kube-scheduler's scaling of a summed image size to 0..=100.
pub fn calculate_priority(sum: i64, num_containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * num_containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for ImageLocality {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        state.write(TotalNodes(snapshot.len()));
        (PreFilterResult::all_nodes(), Status::success())
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let spec = &pod.pod.spec;
        let containers = spec.init_containers.iter().chain(&spec.containers);
        let num_containers = spec.init_containers.len() + spec.containers.len();
        if node.image_states.is_empty() {
            return Ok(calculate_priority(0, num_containers));
        }
        let total = state.read::<TotalNodes>().map(|t| t.0).unwrap_or(0);
        let mut sum = 0i64;
        for c in containers {
            let Some(image) = c.image.as_deref() else {
                continue;
            };
            let normalized = normalized_image_name(image);
            let found = node
                .image_states
                .get(normalized.as_ref())
                .or_else(|| node.image_states.get(image));
            if let Some(st) = found {
                let spread = if total == 0 {
                    1.0
                } else {
                    (st.num_nodes as f64 / total as f64).min(1.0)
                };
                sum += (st.size_bytes as f64 * spread) as i64;
            }
        }
        Ok(calculate_priority(sum, num_containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::ImageState;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn normalizes_names() {
        let cases = [
            ("nginx", "nginx:latest"),
            ("nginx:1.25", "nginx:1.25"),
            ("registry:5000/app", "registry:5000/app:latest"),
            ("registry:5000/app:v1", "registry:5000/app:v1"),
        ];
        for (name, want) in cases {
            assert_eq!(normalized_image_name(name), want);
        }
    }

    #[test]
    fn score_table() {
        let with_images = |images: &[(&str, i64, usize)]| {
            let mut n = NodeBuilder::new("n").build();
            for (name, size, nodes) in images {
                n.image_states.insert(
                    (*name).to_string(),
                    ImageState {
                        size_bytes: *size,
                        num_nodes: *nodes,
                    },
                );
            }
            n
        };
        let pod = PodBuilder::new("p").image("big").image("small:v1").build();
        let cases = [
            (with_images(&[]), 0),
            // 500 MiB on 5 of 10 nodes -> 250 MiB, 2 containers: (250-23)*100/(2000-23) = 11
            (with_images(&[("big:latest", 500 * MB, 5)]), 11),
            // Present everywhere: 500 MiB + 100 MiB -> (600-23)*100/1977 = 29
            (
                with_images(&[("big:latest", 500 * MB, 10), ("small:v1", 100 * MB, 10)]),
                29,
            ),
            (with_images(&[("small:v1", 10 * MB, 10)]), 0),
            (with_images(&[("big:latest", 5000 * MB, 10)]), 100),
        ];
        let mut state = CycleState::default();
        state.write(TotalNodes(10));
        for (i, (node, want)) in cases.iter().enumerate() {
            assert_eq!(
                ImageLocality.score(&state, &pod, node),
                Ok(*want),
                "case {i}"
            );
        }
    }
}
