//! QUIC server for engine adapters, engine registry, heartbeats and PANIC.
