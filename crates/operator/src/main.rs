//! The cma-operator binary: see `cma-operator --help`.

fn main() -> std::process::ExitCode {
    cma_operator::cli::main()
}
