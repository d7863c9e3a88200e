//! Sans-IO wire protocol: CBOR frames, HMAC, handshake, replay window.
