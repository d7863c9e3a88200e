//! Built-in policy: NaN/Inf and magnitude audit.
