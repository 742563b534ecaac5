//! Stores for ketch: the embedded `MemoryStore` and a conformance suite for
//! any `Store` implementation.
