//! The built-in kinds, with Kubernetes field names and JSON shapes so that
//! existing manifests parse unchanged.
//!
//! Every top-level kind serializes with its `apiVersion` and `kind`, accepts
//! them (or their absence) on input, and rejects unknown fields.

mod apps;
mod coordination;
mod core_v1;
mod event;
mod rbac;
mod time;

pub use apps::*;
pub use coordination::*;
pub use core_v1::*;
pub use event::*;
pub use rbac::*;
pub use time::MicroTime;

/// True when `v` equals its type's default; used to omit empty fields.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Declares a top-level kind: the struct with `metadata` and the given fields,
/// its [`Resource`](crate::Resource) impl, and serde impls that write and check
/// `apiVersion`/`kind` and reject unknown fields.
macro_rules! resource {
    (
        $(#[$doc:meta])*
        pub struct $ty:ident {
            kind: $kind:literal, api_version: $av:literal, plural: $plural:literal, namespaced: $ns:literal;
            $( $(#[$fdoc:meta])* pub $field:ident : $fty:ty = $wire:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $ty {
            /// Standard object metadata.
            pub metadata: $crate::ObjectMeta,
            $( $(#[$fdoc])* pub $field: $fty, )*
        }

        impl $crate::Resource for $ty {
            const KIND: &'static str = $kind;
            const API_VERSION: &'static str = $av;
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $ns;

            fn meta(&self) -> &$crate::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut $crate::ObjectMeta {
                &mut self.metadata
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("apiVersion", $av)?;
                m.serialize_entry("kind", $kind)?;
                m.serialize_entry("metadata", &self.metadata)?;
                $(
                    if !$crate::api::is_default(&self.$field) {
                        m.serialize_entry($wire, &self.$field)?;
                    }
                )*
                m.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Wire {
                    #[serde(rename = "apiVersion", default)]
                    api_version: Option<String>,
                    #[serde(default)]
                    kind: Option<String>,
                    #[serde(default)]
                    metadata: $crate::ObjectMeta,
                    $( #[serde(rename = $wire, default)] $field: $fty, )*
                }
                let w = Wire::deserialize(d)?;
                if let Some(av) = &w.api_version {
                    if av != $av {
                        return Err(D::Error::custom(format!(
                            "apiVersion: expected {:?} for kind {}, got {:?}", $av, $kind, av
                        )));
                    }
                }
                if let Some(k) = &w.kind {
                    if k != $kind {
                        return Err(D::Error::custom(format!("kind: expected {:?}, got {:?}", $kind, k)));
                    }
                }
                Ok($ty { metadata: w.metadata, $( $field: w.$field, )* })
            }
        }
    };
}
pub(crate) use resource;
