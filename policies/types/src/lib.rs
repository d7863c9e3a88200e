//! The policy world's data as plain Rust (intent, context, leaves, verdicts, fixtures).
