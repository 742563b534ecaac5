//! The ketch node agent: drives a container `Runtime` for the pods bound to
//! its node and a `Proxy` that load-balances Services over ready pods.
