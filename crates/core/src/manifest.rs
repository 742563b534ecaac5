//! Manifests: multi-document YAML and JSON decoded into typed objects by
//! `apiVersion`/`kind`, as `kubectl apply -f` reads them.
//!
//! Unknown kinds and unknown fields are errors that name the document (0 for
//! the first) and the field path: a typo is never silently ignored.
//!
//! ```
//! use ketch_core::{Scheme, api::Deployment, manifest::decode_manifests};
//! let text = r#"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: web}
//! spec:
//!   selector: {matchLabels: {app: web}}
//!   template:
//!     metadata: {labels: {app: web}}
//!     spec:
//!       containers: [{name: web, image: nginx}]
//! ---
//! apiVersion: v1
//! kind: Service
//! metadata: {name: web}
//! spec:
//!   selector: {app: web}
//!   ports: [{port: 80, targetPort: 8080}]
//! "#;
//! let scheme = Scheme::with_builtins();
//! let objects = decode_manifests(text, &scheme).unwrap();
//! assert_eq!(objects.len(), 2);
//! let d = objects[0].downcast_ref::<Deployment>().unwrap();
//! assert_eq!(d.spec.template.spec.containers[0].image.as_deref(), Some("nginx"));
//!
//! let typo = text.replace("targetPort", "tragetPort");
//! let err = decode_manifests(&typo, &scheme).unwrap_err();
//! assert!(err.to_string().starts_with("document 1: spec.ports[0].tragetPort: unknown field `tragetPort`"), "{err}");
//! ```

use serde::Deserialize;

use crate::{DecodeError, Object, Scheme};

/// Why a manifest could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A document is not valid YAML.
    #[error("document {index}: invalid YAML: {message}")]
    Yaml {
        /// Zero-based index of the document.
        index: usize,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A document is not valid JSON.
    #[error("document {index}: invalid JSON: {message}")]
    Json {
        /// Zero-based index of the document.
        index: usize,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A document (or an item of a `List`) is not a mapping.
    #[error("document {index}{}: expected an object with apiVersion and kind, found {found}", item_suffix(*.item))]
    NotAnObject {
        /// Zero-based index of the document.
        index: usize,
        /// Index in the `items` of a `List` document.
        item: Option<usize>,
        /// What was found instead (`a list`, `a string`, ...).
        found: &'static str,
    },
    /// A document does not decode into its kind: unknown kind, missing
    /// `apiVersion`/`kind`, or a field that does not fit (with its path).
    #[error("document {index}{}: {source}", item_suffix(*.item))]
    Decode {
        /// Zero-based index of the document.
        index: usize,
        /// Index in the `items` of a `List` document.
        item: Option<usize>,
        /// The decoding error, with the field path.
        #[source]
        source: DecodeError,
    },
    /// YAML flow collections (`[...]`, `{...}`) are nested deeper than
    /// [`MAX_FLOW_DEPTH`]; rejected before parsing, whose cost grows with
    /// the square of the depth.
    #[error("invalid YAML: flow collections nested deeper than {limit} levels at line {line}")]
    TooDeep {
        /// One-based line where the limit was passed.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// An object could not be written out.
    #[error("object {index}: cannot encode: {message}")]
    Encode {
        /// Zero-based index of the object.
        index: usize,
        /// What went wrong.
        message: String,
    },
}

fn item_suffix(item: Option<usize>) -> String {
    match item {
        Some(i) => format!(", items[{i}]"),
        None => String::new(),
    }
}

/// Decodes a manifest: JSON when the first non-blank character is `{` or
/// `[` (one or more concatenated values, each an object or an array of
/// objects), multi-document YAML otherwise. Empty YAML documents are
/// skipped; a `kind: List` document (as `kubectl get -o yaml` writes) is
/// expanded into its `items`.
///
/// ```
/// use ketch_core::{Scheme, manifest::decode_manifests};
/// let scheme = Scheme::with_builtins();
/// let objs = decode_manifests(r#"[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}]"#, &scheme).unwrap();
/// assert_eq!(objs[0].metadata().name(), "a");
/// let err = decode_manifests("apiVersion: v1\nkind: Pood\nmetadata: {name: a}\n", &scheme).unwrap_err();
/// assert_eq!(err.to_string(), r#"document 0: unknown kind "Pood" in apiVersion "v1""#);
/// ```
pub fn decode_manifests(
    text: &str,
    scheme: &Scheme,
) -> Result<Vec<Box<dyn Object>>, ManifestError> {
    match text.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => decode_json(text, scheme),
        _ => decode_yaml(text, scheme),
    }
}

/// Decodes multi-document YAML (documents separated by `---`).
///
/// ```
/// use ketch_core::{Scheme, manifest::decode_yaml};
/// let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n# nothing\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n";
/// let objs = decode_yaml(text, &Scheme::with_builtins()).unwrap();
/// assert_eq!(objs.iter().map(|o| o.metadata().name()).collect::<Vec<_>>(), ["a", "b"]);
/// ```
pub fn decode_yaml(text: &str, scheme: &Scheme) -> Result<Vec<Box<dyn Object>>, ManifestError> {
    check_flow_depth(text)?;
    let mut objects = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(document).map_err(|e| ManifestError::Yaml {
            index,
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        decode_document(index, value, scheme, &mut objects)?;
    }
    Ok(objects)
}

/// Deepest nesting of YAML flow collections accepted. Decoding stops at 128
/// levels of any nesting anyway; this bound only keeps hostile input from
/// making the parser slow.
pub const MAX_FLOW_DEPTH: usize = 256;

/// Rejects text whose `[`/`{` nesting passes [`MAX_FLOW_DEPTH`]. Brackets in
/// quoted scalars and comments are skipped; in the rare plain scalar that
/// holds brackets they are counted, which can only make the count larger
/// than a real nesting that would fail to decode anyway.
fn check_flow_depth(text: &str) -> Result<(), ManifestError> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    let mut bytes = text.bytes();
    while let Some(c) = bytes.next() {
        if c == b'\n' {
            line += 1;
            comment = false;
        }
        match quote {
            Some(b'"') if c == b'\\' => {
                bytes.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if comment => {}
            None => match c {
                b'#' if prev.is_ascii_whitespace() => comment = true,
                // A quote opens a scalar only where a scalar can start, not
                // inside a word (`don't`).
                b'"' | b'\'' if prev.is_ascii_whitespace() || b"[{,:-?".contains(&prev) => {
                    quote = Some(c)
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(ManifestError::TooDeep {
                            line,
                            limit: MAX_FLOW_DEPTH,
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    Ok(())
}

/// Decodes JSON: one or more concatenated values, each an object (possibly a
/// `List`) or an array of objects.
///
/// ```
/// use ketch_core::{Scheme, manifest::decode_json};
/// let err = decode_json(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"nodeName":1}}"#,
///     &Scheme::with_builtins()).unwrap_err();
/// assert_eq!(err.to_string(), "document 0: spec.nodeName: invalid type: integer `1`, expected a string");
/// ```
pub fn decode_json(text: &str, scheme: &Scheme) -> Result<Vec<Box<dyn Object>>, ManifestError> {
    let mut objects = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (index, value) in stream.enumerate() {
        let value = value.map_err(|e| ManifestError::Json {
            index,
            message: e.to_string(),
        })?;
        match value {
            serde_json::Value::Array(items) => {
                for (item, v) in items.into_iter().enumerate() {
                    decode_one(index, Some(item), v, scheme, &mut objects)?;
                }
            }
            v => decode_document(index, v, scheme, &mut objects)?,
        }
    }
    Ok(objects)
}

/// Decodes one document, expanding a `List`.
fn decode_document(
    index: usize,
    value: serde_json::Value,
    scheme: &Scheme,
    out: &mut Vec<Box<dyn Object>>,
) -> Result<(), ManifestError> {
    let serde_json::Value::Object(mut list) = value else {
        return decode_one(index, None, value, scheme, out);
    };
    let is_list = list.get("kind").and_then(|k| k.as_str()) == Some("List")
        && list.get("apiVersion").and_then(|k| k.as_str()) == Some("v1");
    if !is_list {
        return decode_one(index, None, serde_json::Value::Object(list), scheme, out);
    }
    for key in list.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "items") {
            return Err(ManifestError::Decode {
                index,
                item: None,
                source: DecodeError::Invalid {
                    path: key.clone(),
                    message: format!(
                        "unknown field `{key}`, expected one of `apiVersion`, `kind`, `metadata`, `items`"
                    ),
                },
            });
        }
    }
    match list.remove("items") {
        Some(serde_json::Value::Array(items)) => {
            for (item, v) in items.into_iter().enumerate() {
                decode_one(index, Some(item), v, scheme, out)?;
            }
            Ok(())
        }
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(other) => Err(ManifestError::Decode {
            index,
            item: None,
            source: DecodeError::Invalid {
                path: "items".to_string(),
                message: format!("expected a list, found {}", describe(&other)),
            },
        }),
    }
}

fn decode_one(
    index: usize,
    item: Option<usize>,
    value: serde_json::Value,
    scheme: &Scheme,
    out: &mut Vec<Box<dyn Object>>,
) -> Result<(), ManifestError> {
    if !value.is_object() {
        return Err(ManifestError::NotAnObject {
            index,
            item,
            found: describe(&value),
        });
    }
    let obj = scheme
        .decode_value(value)
        .map_err(|source| ManifestError::Decode {
            index,
            item,
            source,
        })?;
    out.push(obj);
    Ok(())
}

fn describe(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Writes objects as multi-document YAML, `---` between documents.
///
/// ```
/// use ketch_core::{Object, ObjectMeta, Scheme, api::Namespace, manifest::{decode_yaml, encode_yaml}};
/// let ns: Box<dyn Object> = Box::new(Namespace { metadata: ObjectMeta::cluster_named("a"), ..Default::default() });
/// let text = encode_yaml(&[ns.clone()]).unwrap();
/// assert_eq!(text, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n");
/// let back = decode_yaml(&text, &Scheme::with_builtins()).unwrap();
/// assert!(back[0].eq_object(ns.as_ref()));
/// ```
pub fn encode_yaml(objects: &[Box<dyn Object>]) -> Result<String, ManifestError> {
    let mut out = String::new();
    for (index, obj) in objects.iter().enumerate() {
        let encode = |message: String| ManifestError::Encode { index, message };
        let value = obj.to_value().map_err(|e| encode(e.to_string()))?;
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_norway::to_string(&value).map_err(|e| encode(e.to_string()))?);
    }
    Ok(out)
}

/// Writes objects as JSON: one object as itself, several as an array.
///
/// ```
/// use ketch_core::{Object, ObjectMeta, Scheme, api::Namespace, manifest::{decode_json, encode_json}};
/// let ns: Box<dyn Object> = Box::new(Namespace { metadata: ObjectMeta::cluster_named("a"), ..Default::default() });
/// let text = encode_json(&[ns.clone(), ns]).unwrap();
/// assert_eq!(decode_json(&text, &Scheme::with_builtins()).unwrap().len(), 2);
/// ```
pub fn encode_json(objects: &[Box<dyn Object>]) -> Result<String, ManifestError> {
    let mut values = Vec::with_capacity(objects.len());
    for (index, obj) in objects.iter().enumerate() {
        values.push(obj.to_value().map_err(|e| ManifestError::Encode {
            index,
            message: e.to_string(),
        })?);
    }
    let result = match values.len() {
        1 => serde_json::to_string_pretty(&values[0]),
        _ => serde_json::to_string_pretty(&values),
    };
    result.map_err(|e| ManifestError::Encode {
        index: 0,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme() -> Scheme {
        Scheme::with_builtins()
    }

    #[test]
    fn empty_inputs_decode_to_nothing() {
        for text in ["", "   \n", "---\n", "# only a comment\n", "---\n---\n"] {
            assert_eq!(
                decode_manifests(text, &scheme()).map(|v| v.len()),
                Ok(0),
                "{text:?}"
            );
        }
    }

    #[test]
    fn list_documents_are_expanded() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
- apiVersion: v1
  kind: Namespace
  metadata: {name: b}
  spec: {finalizer: [x]}
"#;
        let err = decode_manifests(text, &scheme()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 0, items[1]: spec.finalizer: unknown field `finalizer`, expected `finalizers`"
        );
        let ok = text.replace("finalizer:", "finalizers:");
        assert_eq!(decode_manifests(&ok, &scheme()).map(|v| v.len()), Ok(2));
    }

    #[test]
    fn deep_flow_nesting_is_rejected_quickly() {
        let started = std::time::Instant::now();
        let deep = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {}\n",
            "[a, ".repeat(100_000)
        );
        assert_eq!(
            decode_manifests(&deep, &scheme()).unwrap_err(),
            ManifestError::TooDeep {
                line: 3,
                limit: MAX_FLOW_DEPTH
            }
        );
        let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_manifests(&json, &scheme()).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Brackets in quoted scalars and comments do not count.
        let quoted = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a  # {}\n  annotations: {{x: \"{}\", y: '{}'}}\n",
            "[".repeat(300),
            "{".repeat(300),
            "[".repeat(300)
        );
        assert_eq!(decode_manifests(&quoted, &scheme()).map(|v| v.len()), Ok(1));
        // An apostrophe inside a word opens no quote that could hide brackets.
        let apostrophe = format!("a: don't\nb: {}\n", "[".repeat(300));
        assert!(matches!(
            decode_manifests(&apostrophe, &scheme()),
            Err(ManifestError::TooDeep { line: 2, .. })
        ));
    }

    #[test]
    fn non_objects_are_rejected() {
        let cases: &[(&str, &str)] = &[
            (
                "- a\n- b\n",
                "document 0: expected an object with apiVersion and kind, found a list",
            ),
            (
                "hello\n",
                "document 0: expected an object with apiVersion and kind, found a string",
            ),
            (
                "[1]",
                "document 0, items[0]: expected an object with apiVersion and kind, found a number",
            ),
            (
                "apiVersion: v1\nkind: List\nitems: {}\n",
                "document 0: items: expected a list, found an object",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                decode_manifests(text, &scheme()).unwrap_err().to_string(),
                *want
            );
        }
    }
}
