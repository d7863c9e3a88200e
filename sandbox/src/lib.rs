//! Landlock and seccomp confinement of the host process.
