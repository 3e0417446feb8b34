//! `loadgen`: the open-loop wss load generator. Filled by the loadgen issue.

fn main() {
    eprintln!("loadgen {}: not implemented yet", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
