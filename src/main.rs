//! The `fieldproof` binary: parse the command line, hand over to the library.

/// mimalloc instead of glibc malloc: the intake paths allocate many small, short-lived objects
/// across threads (request parsing, rows, decision records), where glibc's arenas spent a fifth
/// of the server's CPU (docs/leads.md). Peak RSS under 64 concurrent 10 MB uploads is ~200 MiB
/// with it (110 MiB with glibc and a fixed mmap threshold; target < 300 MiB, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fieldproof::cli::main()
}
