//! The `fieldproof` binary: parse the command line, hand over to the library.

fn main() -> std::process::ExitCode {
    fieldproof::ops::tune_allocator();
    fieldproof::cli::main()
}
