//! The `lmsync` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    lmsync::cli::main()
}
