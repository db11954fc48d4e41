//! Telemetry: the Prometheus metrics registry and the tracing setup.

pub mod metrics;
