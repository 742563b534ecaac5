//! The core of ketch: the object model, quantities, selectors, and the traits
//! every component is built on ([`Store`]).
//!
//! ```
//! use ketch_core::{ObjectMeta, api::Pod};
//! let pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
//! let json = serde_json::to_string(&pod).unwrap();
//! assert!(json.starts_with(r#"{"apiVersion":"v1","kind":"Pod""#));
//! ```

pub mod api;
pub mod client;
mod intstr;
mod json;
pub mod manifest;
pub mod meta;
pub mod object;
pub mod quantity;
pub mod runtime;
pub mod selector;
pub mod store;
mod time;
pub mod validation;

pub use client::{
    Api, ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, ObjectEvent,
    ObjectEventStream, ObjectList, ResourceVersionMatch, TypedList, WatchParams,
};
pub use intstr::IntOrString;
pub use meta::{ObjectMeta, OwnerReference, Resource, TypeMeta};
pub use object::{ApiResource, DecodeError, DynamicObject, KindInfo, Object, Scheme};
pub use quantity::{ParsedQuantity, Quantity, QuantityError};
pub use selector::{
    FieldSelector, LabelSelector, LabelSelectorOperator, LabelSelectorRequirement, Labels,
    Selector, SelectorError,
};
pub use store::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchEvent, WatchStream,
};
pub use time::Time;
