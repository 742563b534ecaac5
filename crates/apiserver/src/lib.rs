//! The ketch API server: validation, defaulting, admission, authentication,
//! authorization and watch fan-out over any `Store`.
