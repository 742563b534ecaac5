//! A compact JSON writer for encoding objects: the same bytes as
//! `serde_json::to_writer`, but a string that needs no escaping (nearly every
//! key and value of an object) is checked in one vectorizable pass and copied
//! in one piece, where serde_json looks each byte up in a table. Numbers,
//! escaped strings and anything unusual are written by serde_json itself.

use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, Error as _};

type Error = serde_json::Error;

/// Appends the compact JSON encoding of `value` to `out`, byte for byte what
/// `serde_json::to_writer` appends.
///
/// Values this writer leaves to serde_json as a whole (maps with keys that
/// are not strings, serde_json's private raw types) and values that fail to
/// serialize are written again by serde_json, which reports errors as it
/// always does.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    let start = out.len();
    if value.serialize(Writer { out: &mut *out }).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    serde_json::to_writer(out, value)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// True when one of the eight bytes of `x` is a control character, `"` or
/// `\` (the bit tricks for "has a byte less than n" and "has a zero byte": a
/// borrow only crosses into a byte above one that matched, so the answer is
/// exact).
fn word_needs_escape(x: u64) -> bool {
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH_BITS != 0
}

/// True when serde_json would escape a byte of `s`: control characters,
/// `"` and `\`. Checks eight bytes at a time; the last word of a string of
/// eight bytes or more overlaps the one before, so no byte is copied.
fn needs_escape(s: &str) -> bool {
    let bytes = s.as_bytes();
    let word_at = |at: usize| {
        let word: [u8; 8] = bytes[at..at + 8].try_into().unwrap_or([0; 8]);
        word_needs_escape(u64::from_le_bytes(word))
    };
    match bytes.len() {
        len if len < 8 => bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\'),
        len => (0..len - 8).step_by(8).any(word_at) || word_at(len - 8),
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), Error> {
    if needs_escape(s) {
        return ser::Serializer::serialize_str(&mut serde_json::Serializer::new(out), s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// The error that hands a value over to serde_json.
fn unsupported() -> Error {
    Error::custom("left to serde_json")
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// Writes a scalar with serde_json's own serializer.
macro_rules! by_serde_json {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<(), Error> {
            ser::Serializer::$method(&mut serde_json::Serializer::new(self.out), v)
        }
    )*};
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    by_serde_json!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
    );

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v)
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        ser::Serializer::collect_str(&mut serde_json::Serializer::new(self.out), value)
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.push(b':');
        value.serialize(Writer {
            out: &mut *self.out,
        })?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.out.push(b'[');
        Ok(Compound::new(self.out, false))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.extend_from_slice(b":[");
        Ok(Compound::new(self.out, true))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.out.push(b'{');
        Ok(Compound::new(self.out, false))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        // serde_json's private types (raw values, arbitrary-precision
        // numbers) are structs with names of this form.
        if name.starts_with("$serde_json::") {
            return Err(unsupported());
        }
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.extend_from_slice(b":{");
        Ok(Compound::new(self.out, true))
    }
}

/// An array or object being written; `variant` when it is the value of an
/// enum variant's `{"variant": ...}` wrapper, which closes with it.
struct Compound<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    variant: bool,
}

impl<'a> Compound<'a> {
    fn new(out: &'a mut Vec<u8>, variant: bool) -> Self {
        Self {
            out,
            first: true,
            variant,
        }
    }

    fn separator(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.separator();
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }

    fn close(self, bracket: u8) -> Result<(), Error> {
        self.out.push(bracket);
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// Serde's four sequence traits differ only in their names: each writes its
/// elements as the items of a JSON array.
macro_rules! array_impls {
    ($($trait_:ident::$method:ident),* $(,)?) => {$(
        impl ser::$trait_ for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.close(b']')
            }
        }
    )*};
}

array_impls!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.separator();
        key.serialize(KeyWriter {
            out: &mut *self.out,
        })?;
        self.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}')
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.separator();
        write_str(self.out, key)?;
        self.out.push(b':');
        value.serialize(Writer {
            out: &mut *self.out,
        })
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}')
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}')
    }
}

/// Writes a map key: strings (and what serializes as one: unit variants,
/// newtypes around strings); any other key is left to serde_json.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

/// Key types serde_json writes in its own way: leave the whole value to it.
macro_rules! not_a_string_key {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, _v: $ty) -> Result<(), Error> {
            Err(unsupported())
        }
    )*};
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    not_a_string_key!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
    );

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(unsupported())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(unsupported())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(unsupported())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(unsupported())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(unsupported())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(unsupported())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(unsupported())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(unsupported())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(unsupported())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::write;
    use crate::api::{Deployment, Node, Pod};
    use crate::{DynamicObject, Object};

    fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
        let mut ours = b"prefix".to_vec();
        let result = write(&mut ours, value);
        let mut theirs = b"prefix".to_vec();
        let expected = serde_json::to_writer(&mut theirs, value);
        assert_eq!(
            result.as_ref().map_err(ToString::to_string),
            expected.as_ref().map_err(ToString::to_string)
        );
        if expected.is_ok() {
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Tuple(i32, &'static str);

    #[derive(Serialize)]
    struct Newtype(String);

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Shape {
        Plain,
        Newtype(u8),
        Tuple(i8, bool),
        Struct { a: Option<u16>, b: Vec<char> },
    }

    #[derive(Serialize)]
    struct Everything {
        unit: Unit,
        tuple: Tuple,
        newtype: Newtype,
        shapes: Vec<Shape>,
        floats: (f32, f64, f64, f64),
        ints: (i8, i16, i64, i128, u8, u64, u128),
        #[serde(with = "bytes_as_bytes")]
        bytes: Vec<u8>,
        text: &'static str,
        none: Option<String>,
        by_variant: BTreeMap<Shape, i32>,
        by_newtype: BTreeMap<String, ()>,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    }

    mod bytes_as_bytes {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let everything = Everything {
            unit: Unit,
            tuple: Tuple(-7, "t\u{1}"),
            newtype: Newtype("quote \" backslash \\ tab \t é 😀".into()),
            shapes: vec![
                Shape::Plain,
                Shape::Newtype(3),
                Shape::Tuple(-1, true),
                Shape::Struct {
                    a: None,
                    b: vec!['x', '"', '\n'],
                },
                Shape::Struct {
                    a: Some(9),
                    b: vec![],
                },
            ],
            floats: (1.5, -0.0, f64::NAN, 1e300),
            ints: (i8::MIN, 300, i64::MIN, i128::MAX, 255, u64::MAX, u128::MAX),
            bytes: vec![0, 1, 255],
            text: "",
            none: None,
            by_variant: [(Shape::Plain, 1)].into(),
            by_newtype: [("k\u{7f}".to_string(), ())].into(),
            rest: [
                (
                    "nested".to_string(),
                    json!({"a": [1, 2.5, null, true, {"b\u{1f}": "c"}], "e": {}}),
                ),
                ("empty".to_string(), json!([])),
            ]
            .into(),
        };
        same_as_serde_json(&everything);
        same_as_serde_json(&json!({"z": 1, "a": [{}, [], "x"]}));
        same_as_serde_json("plain");
        same_as_serde_json(&Vec::<u8>::new());
    }

    #[test]
    fn escaping_is_detected_in_every_byte_position() {
        for len in 0..20 {
            for at in 0..len {
                for byte in 0u8..=127 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let text = String::from_utf8(text).unwrap();
                    let escaped = byte < 0x20 || byte == b'"' || byte == b'\\';
                    assert_eq!(super::needs_escape(&text), escaped, "{text:?}");
                }
            }
        }
        assert!(!super::needs_escape(
            "é 😀 \u{7f} plain text of some length"
        ));
        same_as_serde_json("a long string with a \"quote\" after the first eight bytes");
    }

    #[test]
    fn keys_that_are_not_strings_are_left_to_serde_json() {
        let by_int: BTreeMap<i32, &str> = [(1, "a"), (-2, "b")].into();
        same_as_serde_json(&by_int);
        let by_bool: BTreeMap<bool, u8> = [(true, 1)].into();
        same_as_serde_json(&vec![by_bool]);
        let by_tuple: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        same_as_serde_json(&by_tuple);
        let by_struct_variant: BTreeMap<Shape, u8> = [(Shape::Newtype(1), 3)].into();
        same_as_serde_json(&by_struct_variant);
    }

    #[test]
    fn objects_encode_as_with_serde_json() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "annotations": {"note": "line\nbreak \"quoted\""},
                         "creationTimestamp": "2024-05-01T12:00:00Z"},
            "spec": {
                "containers": [{"name": "web", "image": "nginx", "command": ["sh", "-c", "echo \\ é"],
                                "env": [{"name": "A", "value": "1"}],
                                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
                                "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}],
                "nodeSelector": {"disk": "ssd"},
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": {"topologyKey": "zone",
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}}]}}
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        same_as_serde_json(&pod);
        let mut out = Vec::new();
        pod.write_json(&mut out).unwrap();
        assert_eq!(out, serde_json::to_vec(&pod).unwrap());
        same_as_serde_json(&Node::default());
        same_as_serde_json(&Deployment::default());
        let dynamic: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Job", "metadata": {"name": "a"},
            "spec": {"x": 1, "y": [0.1, -3, "s\u{0}"]}, "status": null
        }))
        .unwrap();
        same_as_serde_json(&dynamic);
    }
}
