//! The `fieldproof` binary: parse the command line, hand over to the library.

/// mimalloc instead of glibc malloc: the intake paths allocate many small, short-lived objects
/// across threads (request parsing, rows, decision records), where glibc's arenas spent a fifth
/// of the server's CPU (docs/benchmarks.md); mimalloc also returns freed large buffers (photos)
/// to the system, which kept peak RSS low under concurrent uploads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fieldproof::cli::main()
}
