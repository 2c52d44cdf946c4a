//! The API conformance suite every backend passes, on PostgreSQL: the real
//! HTTP router over a `PostgresBroker` in a schema of its own per test.

mod common;

wharf_testkit::api_conformance_suite!(common::conformance_backend);
