//! Prints the example frames of docs/protocol.md (also pinned by the
//! `test_vectors` test).
fn main() {
    for (name, rec) in vibesync_protocol::frame::test_vectors() {
        println!("{name}: {}", hex::encode(&rec));
    }
}
