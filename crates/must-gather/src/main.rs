//! The cma-must-gather binary: see `cma-must-gather --help`.

fn main() -> std::process::ExitCode {
    cma_must_gather::cli::main()
}
