//! The hash-chained, segmented write-ahead log.
