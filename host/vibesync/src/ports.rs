//! A free loopback UDP port for a QUIC listener that the demo, the load
//! bench or a test starts and then hands to `vibesync serve`.
//!
//! Binding port 0 and letting the port go again races with every other
//! socket on the machine: the kernel hands out the same ephemeral ports to
//! the QUIC *client* sockets that engines open, so a port released here can
//! be taken by one of them before `serve` binds it ("Address already in
//! use", seen in CI with several end-to-end tests running at once). Ports
//! are therefore drawn at random from just below the kernel's ephemeral
//! range, which no client socket is given, and checked by binding them.

use std::hash::{BuildHasher, Hasher};
use std::net::UdpSocket;

/// How many ports below the ephemeral range are drawn from.
const SPAN: u16 = 10_000;

/// A loopback UDP port that was free a moment ago and that no client socket
/// will be given meanwhile.
pub fn free_loopback_udp_port() -> std::io::Result<u16> {
    let low = ephemeral_range_start().unwrap_or(32_768).max(2_048);
    let base = low.saturating_sub(SPAN).max(1_024);
    let span = u64::from(low - base);
    // Random per call and per process (std seeds `RandomState` randomly).
    let mut x = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    for _ in 0..64 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let port = base + ((x >> 33) % span) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // That range is crowded: fall back to the kernel's choice.
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// First port of the kernel's ephemeral range (Linux).
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_below_the_ephemeral_range() {
        let low = ephemeral_range_start().unwrap_or(32_768);
        let ports: Vec<u16> = (0..20).map(|_| free_loopback_udp_port().unwrap()).collect();
        for &p in &ports {
            assert!(p < low, "{p} is in the ephemeral range starting at {low}");
            UdpSocket::bind(("127.0.0.1", p)).expect("still free");
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 10, "drawn at random: {ports:?}");
    }
}
