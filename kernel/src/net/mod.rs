//! Sockets and select: a BSD-like socket layer over a pluggable network driver.
