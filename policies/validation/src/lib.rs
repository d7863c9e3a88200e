//! Built-in policy: per-op schema validation.
