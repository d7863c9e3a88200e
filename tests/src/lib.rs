//! Whole-system tests: real processes over real sockets.
