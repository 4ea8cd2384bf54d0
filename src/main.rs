//! The `fieldproof` binary: parse the command line, hand over to the library.

fn main() -> std::process::ExitCode {
    fieldproof::cli::main()
}
