//! Built-in policy: semantic firewall.
