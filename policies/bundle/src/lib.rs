//! Builds the built-in policies to wasm32-wasip2 components and embeds them.
