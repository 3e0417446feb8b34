//! `loadgen`: open-loop wss load for ringcast — broadcast, echo, connect storms, idle holds —
//! with HdrHistogram latency, loss/duplicate/corruption counts, `compare` and `plot`.

mod api;
mod centrifuge;
mod cli;
mod client;
mod driver;
mod payload;
mod plot;
mod report;
mod run;
mod sys;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match driver::main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}
