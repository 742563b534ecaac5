//! Core (`v1`) Event: a report of something that happened to an object.

use serde::{Deserialize, Serialize};

use super::{MicroTime, ObjectReference, resource};
use crate::Time;

/// The component that reported an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSource {
    /// Component name, e.g. `default-scheduler`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Node name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

resource! {
    /// An event, e.g. `FailedScheduling` on a pod.
    pub struct Event {
        kind: "Event", api_version: "v1", plural: "events", namespaced: true;
        /// The object the event is about.
        pub involved_object: ObjectReference = "involvedObject",
        /// Machine-readable reason, e.g. `FailedScheduling`.
        pub reason: Option<String> = "reason",
        /// Human-readable description.
        pub message: Option<String> = "message",
        /// Component that reported it.
        pub source: Option<EventSource> = "source",
        /// First time it was seen.
        pub first_timestamp: Option<Time> = "firstTimestamp",
        /// Last time it was seen.
        pub last_timestamp: Option<Time> = "lastTimestamp",
        /// How many times it was seen.
        pub count: Option<i32> = "count",
        /// `Normal` or `Warning`.
        pub type_: Option<String> = "type",
        /// When it was first observed, with microseconds.
        pub event_time: Option<MicroTime> = "eventTime",
        /// What action was taken or failed, e.g. `Binding`.
        pub action: Option<String> = "action",
        /// Controller that emitted it.
        pub reporting_component: Option<String> = "reportingComponent",
        /// Instance of the controller that emitted it.
        pub reporting_instance: Option<String> = "reportingInstance",
    }
}
