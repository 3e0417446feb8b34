//! The `ringcast` binary. The server itself comes with the server issue; until then this only
//! reports what it is.

use clap::Parser;

/// ringcast: WebSocket-over-TLS chat and broadcast server on io_uring.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "ringcast {}: the protocol core is built; the wss server is not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
