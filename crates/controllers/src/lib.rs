//! Controller runtime and the built-in controllers of ketch (ReplicaSet,
//! Deployment, node lifecycle, endpoints, garbage collection).
