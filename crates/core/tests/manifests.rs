//! Manifests users write every day decode, validate and round-trip; broken
//! ones fail with the document index, the field path and the problem.

use std::path::PathBuf;

use ketch_core::manifest::{decode_json, decode_manifests, decode_yaml, encode_json, encode_yaml};
use ketch_core::validation::validate_object;
use ketch_core::{Object, Scheme};

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "manifests", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML text as a JSON value, skipping empty ones.
fn yaml_values(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn validate(obj: &dyn Object, scheme: &Scheme) -> Result<(), String> {
    let info = scheme
        .by_kind(obj.api_version(), obj.kind())
        .expect("decoded kinds are registered");
    validate_object(obj, &info.resource).map_err(|e| e.to_string())
}

fn assert_same_objects(a: &[Box<dyn Object>], b: &[Box<dyn Object>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(x.eq_object(y.as_ref()), "{x:?}\n!=\n{y:?}");
    }
}

/// Fixtures written in canonical form: decoding and encoding again yields
/// exactly the input, so no field was dropped or changed on the way.
const CANONICAL_FIXTURES: &[(&str, &[&str])] = &[
    ("nginx-deployment.yaml", &["Deployment"]),
    ("service.yaml", &["Service", "Service", "Service"]),
    ("pod-probes-resources.yaml", &["Pod"]),
    ("node-affinity-tolerations.yaml", &["Pod"]),
    ("topology-spread.yaml", &["Deployment"]),
    (
        "cluster-objects.yaml",
        &[
            "Namespace",
            "Node",
            "ReplicaSet",
            "Endpoints",
            "Lease",
            "Event",
        ],
    ),
];

#[test]
fn everyday_manifests_decode_validate_and_round_trip() {
    let scheme = Scheme::with_builtins();
    for (name, kinds) in CANONICAL_FIXTURES {
        let text = fixture(name);
        let objects = decode_manifests(&text, &scheme).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<&str> = objects.iter().map(|o| o.kind()).collect();
        assert_eq!(&got, kinds, "{name}");
        for (obj, original) in objects.iter().zip(yaml_values(&text)) {
            assert_eq!(obj.to_value().unwrap(), original, "{name}: {}", obj.kind());
            assert_eq!(validate(obj.as_ref(), &scheme), Ok(()), "{name}");
        }
        let yaml = encode_yaml(&objects).unwrap();
        assert_same_objects(&objects, &decode_yaml(&yaml, &scheme).unwrap());
        let json = encode_json(&objects).unwrap();
        assert_same_objects(&objects, &decode_json(&json, &scheme).unwrap());
    }
}

#[test]
fn decoded_fields_have_their_kubernetes_meaning() {
    use ketch_core::api::{Deployment, Node, Pod};
    use ketch_core::{IntOrString, selector::Selector};
    let scheme = Scheme::with_builtins();

    let objs = decode_manifests(&fixture("pod-probes-resources.yaml"), &scheme).unwrap();
    let pod = objs[0].downcast_ref::<Pod>().unwrap();
    let api = &pod.spec.containers[0];
    let requests = &api.resources.as_ref().unwrap().requests;
    assert_eq!(requests["cpu"].milli_value(), Ok(250));
    assert_eq!(requests["memory"].value(), Ok(64 << 20));
    assert_eq!(requests["example.com/gpu"].value(), Ok(1));
    let liveness = api.liveness_probe.as_ref().unwrap();
    assert_eq!(
        liveness.http_get.as_ref().unwrap().port,
        IntOrString::String("http".into())
    );
    assert_eq!(pod.spec.init_containers[0].args, ["migrate", "--wait"]);

    let objs = decode_manifests(&fixture("cluster-objects.yaml"), &scheme).unwrap();
    let node = objs[1].downcast_ref::<Node>().unwrap();
    assert_eq!(node.status.allocatable["cpu"].milli_value(), Ok(7800));
    assert_eq!(node.status.capacity["memory"].value(), Ok(32 << 30));

    let objs = decode_manifests(&fixture("nginx-deployment.yaml"), &scheme).unwrap();
    let d = objs[0].downcast_ref::<Deployment>().unwrap();
    let selector = Selector::from(&d.spec.selector);
    assert_eq!(selector.to_string(), "app=nginx");
    assert!(selector.matches(&d.spec.template.metadata.labels));
    let ru = d
        .spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(ru.max_surge.as_ref().unwrap().scaled_value(3, true), Ok(1));
}

#[test]
fn kubectl_generated_manifest_decodes_to_defaults() {
    let scheme = Scheme::with_builtins();
    let objects = decode_manifests(&fixture("kubectl-generated.yaml"), &scheme).unwrap();
    let d = objects[0]
        .downcast_ref::<ketch_core::api::Deployment>()
        .unwrap();
    assert_eq!(d.metadata.creation_timestamp, None);
    assert_eq!(d.spec.strategy.as_ref().map(|s| s.type_), Some(None));
    assert_eq!(validate(objects[0].as_ref(), &scheme), Ok(()));
    let again = decode_yaml(&encode_yaml(&objects).unwrap(), &scheme).unwrap();
    assert_same_objects(&objects, &again);
}

#[test]
fn json_list_decodes_every_item() {
    let scheme = Scheme::with_builtins();
    let text = fixture("list.json");
    let objects = decode_manifests(&text, &scheme).unwrap();
    assert_eq!(
        objects.iter().map(|o| o.kind()).collect::<Vec<_>>(),
        ["Pod", "Namespace"]
    );
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (obj, item) in objects.iter().zip(list["items"].as_array().unwrap()) {
        assert_eq!(&obj.to_value().unwrap(), item);
        assert_eq!(validate(obj.as_ref(), &scheme), Ok(()));
    }
}

/// Broken manifests and the error each must produce.
const BROKEN: &[(&str, &str)] = &[
    (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  replica: 2\n",
        "document 0: spec.replica: unknown field `replica`, expected one of `replicas`, `selector`, `template`, `strategy`, `minReadySeconds`, `revisionHistoryLimit`, `paused`, `progressDeadlineSeconds`",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  lables: {app: web}\n",
        "document 0: metadata.lables: unknown field `lables`, expected one of `name`, `generateName`, `namespace`, `uid`, `resourceVersion`, `generation`, `creationTimestamp`, `deletionTimestamp`, `deletionGracePeriodSeconds`, `labels`, `annotations`, `ownerReferences`, `finalizers`",
    ),
    (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: c\n    image: x\n    imagePullPolicy: Sometimes\n",
        "document 1: spec.containers[0].imagePullPolicy: unknown variant `Sometimes`, expected one of `IfNotPresent`, `Always`, `Never`",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: http\n",
        "document 0: spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected i32",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: c\n    volumeMounts: []\n",
        "document 0: spec.containers[0].volumeMounts: unknown field `volumeMounts`, expected one of `name`, `image`, `imagePullPolicy`, `command`, `args`, `workingDir`, `ports`, `env`, `resources`, `livenessProbe`, `readinessProbe`, `startupProbe`, `terminationMessagePath`, `terminationMessagePolicy`, `stdin`, `tty`",
    ),
    (
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n",
        "document 0: spec.type: unknown variant `LoadBalancer`, expected `ClusterIP` or `NodePort`",
    ),
    (
        "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: web}\n",
        "document 0: unknown kind \"Deployment\" in apiVersion \"apps/v2\"",
    ),
    (
        "apiVersion: v1\nkind: Pood\nmetadata: {name: web}\n",
        "document 0: unknown kind \"Pood\" in apiVersion \"v1\"",
    ),
    (
        "apiVersion: v1\nmetadata: {name: web}\n",
        "document 0: kind: required field is missing",
    ),
    (
        "kind: Pod\nmetadata: {name: web}\n",
        "document 0: apiVersion: required field is missing",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  creationTimestamp: yesterday\n",
        "document 0: metadata.creationTimestamp: invalid RFC 3339 time \"yesterday\": failed to parse four digit integer as year: invalid digit, expected 0-9 but got y",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n spec: {}\n",
        "document 0: invalid YAML: did not find expected key at line 5 column 2, while parsing a block mapping",
    ),
    (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- just\n- a list\n",
        "document 1: expected an object with apiVersion and kind, found a list",
    ),
    (
        "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"},}",
        "document 0: invalid JSON: trailing comma at line 1 column 63",
    ),
    (
        "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}},{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"spec\":{\"x\":1}}]}",
        "document 0, items[1]: spec.x: unknown field `x`, expected `finalizers`",
    ),
    (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  strategy:\n    rollingUpdate:\n      maxSurge: [1]\n",
        "document 0: spec.strategy.rollingUpdate.maxSurge: data did not match any variant of untagged enum IntOrString",
    ),
];

#[test]
fn broken_manifests_fail_with_document_and_field_path() {
    let scheme = Scheme::with_builtins();
    for (i, (text, want)) in BROKEN.iter().enumerate() {
        let got = decode_manifests(text, &scheme).map(|objs| objs.len());
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(want.to_string()),
            "case {i}"
        );
    }
}

/// Manifests that decode but describe an invalid object, and the
/// validation error each must produce.
const INVALID: &[(&str, &str)] = &[
    (
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx}
      - name: sidecar
        image: envoy
        resources: {requests: {cpu: 1.5.0}}
",
        "spec.template.spec.containers[1].resources.requests.cpu: invalid quantity \"1.5.0\"",
    ),
    (
        "apiVersion: v1
kind: Pod
metadata: {name: Web, namespace: default}
spec:
  containers: [{name: web, image: nginx, resources: {limits: {memory: 1GB}}}]
",
        "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character; \
         spec.containers[0].resources.limits.memory: invalid quantity \"1GB\": unknown suffix \"GB\"",
    ),
    (
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: default}
spec:
  selector:
    matchExpressions: [{key: tier, operator: In}]
  template:
    metadata: {labels: {tier: web}}
    spec: {containers: [{name: web, image: nginx}]}
",
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    ),
    (
        "apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}, {name: http, port: 443}]
",
        "spec.ports[1].name: Duplicate value: \"http\"",
    ),
];

#[test]
fn invalid_objects_fail_validation_with_field_paths() {
    let scheme = Scheme::with_builtins();
    for (i, (text, want)) in INVALID.iter().enumerate() {
        let objs = decode_manifests(text, &scheme).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(
            validate(objs[0].as_ref(), &scheme),
            Err(want.to_string()),
            "case {i}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn all_fixtures() -> Vec<String> {
        CANONICAL_FIXTURES
            .iter()
            .map(|(name, _)| *name)
            .chain(["kubectl-generated.yaml", "list.json"])
            .map(fixture)
            .collect()
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Delete(usize),
        Insert(usize, char),
        Replace(usize, char),
        DuplicateLine(usize),
        DeleteLine(usize),
        SwapLines(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let interesting = prop_oneof![
            Just(':'),
            Just('-'),
            Just(' '),
            Just('\n'),
            Just('{'),
            Just('}'),
            Just('['),
            Just(']'),
            Just('"'),
            Just('\''),
            Just('#'),
            Just('&'),
            Just('*'),
            Just('!'),
            Just('|'),
            Just('>'),
            Just('\t'),
            Just('0'),
            Just('x'),
            Just('%'),
            Just('\u{feff}'),
            any::<char>(),
        ];
        prop_oneof![
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), interesting.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
            (any::<usize>(), interesting).prop_map(|(i, c)| Mutation::Replace(i, c)),
            any::<usize>().prop_map(Mutation::DuplicateLine),
            any::<usize>().prop_map(Mutation::DeleteLine),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        ]
    }

    fn apply(text: &str, m: &Mutation) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut lines: Vec<&str> = text.lines().collect();
        match *m {
            Mutation::Delete(i) if !chars.is_empty() => {
                let i = i % chars.len();
                chars[..i].iter().chain(&chars[i + 1..]).collect()
            }
            Mutation::Insert(i, c) => {
                let i = i % (chars.len() + 1);
                chars[..i].iter().chain([&c]).chain(&chars[i..]).collect()
            }
            Mutation::Replace(i, c) if !chars.is_empty() => {
                let i = i % chars.len();
                chars[..i]
                    .iter()
                    .chain([&c])
                    .chain(&chars[i + 1..])
                    .collect()
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let i = i % lines.len();
                lines.insert(i, lines[i]);
                lines.join("\n")
            }
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % lines.len());
                lines.join("\n")
            }
            Mutation::SwapLines(a, b) if !lines.is_empty() => {
                let n = lines.len();
                lines.swap(a % n, b % n);
                lines.join("\n")
            }
            _ => text.to_string(),
        }
    }

    /// Whatever decodes must encode and decode to the same objects.
    fn check_round_trip(text: &str) -> Result<(), TestCaseError> {
        let scheme = Scheme::with_builtins();
        if let Ok(objects) = decode_manifests(text, &scheme) {
            let yaml = encode_yaml(&objects).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = decode_yaml(&yaml, &scheme)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
            prop_assert_eq!(back.len(), objects.len());
            for (a, b) in objects.iter().zip(&back) {
                prop_assert!(a.eq_object(b.as_ref()), "{:?} != {:?}", a, b);
                // Validation must not panic either.
                let _ = validate(a.as_ref(), &scheme);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            check_round_trip(&text)?;
        }

        #[test]
        fn yaml_shaped_text_never_panics(
            text in "(apiVersion: (v1|apps/v1)\nkind: (Pod|Deployment|List|Service)\n)?([a-zA-Z]{1,8}:( [a-z0-9\"{}\\[\\],:-]{0,10})?\n( {1,4}[- a-zA-Z0-9:\"\\[\\]{}]{0,16}\n){0,4}){0,4}(---\n)?"
        ) {
            check_round_trip(&text)?;
        }

        #[test]
        fn mutated_manifests_never_panic(
            which in any::<usize>(),
            mutations in proptest::collection::vec(mutation(), 1..6),
        ) {
            let fixtures = all_fixtures();
            let mut text = fixtures[which % fixtures.len()].clone();
            for m in &mutations {
                text = apply(&text, m);
            }
            check_round_trip(&text)?;
        }
    }
}
