//! The cma-bundle binary: see `cma-bundle --help`.

fn main() -> std::process::ExitCode {
    cma_bundle::cli::main()
}
