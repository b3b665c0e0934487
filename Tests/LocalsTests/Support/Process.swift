// What this test process runs with: the runtime checks the library confirmed, sanitizers, and
// what exit tests (child processes) wrote.

import Foundation
import Locals
import Testing

// MARK: - The runtime checks this process runs with

/// Whether the library confirmed task end detection on this runtime. CI also runs the suite with
/// each runtime check forced to fail (`LOCALS_FORCE_FALLBACK`); tests of a prompt release then
/// give way to tests of the fallback's release.
let pinsTasks = TaskDiscriminator.support.taskEnd.isConfirmed

/// Whether the library confirmed where an `async let` child's parent is.
let findsAsyncLetParents = TaskDiscriminator.support.asyncLetParent.isConfirmed

// MARK: - Sanitizers

/// Whether this process runs under Thread Sanitizer (which makes everything about 5x slower).
let runningUnderThreadSanitizer = isLoaded("__tsan_init")

/// Whether this process runs under Address Sanitizer, whose allocator quarantines freed memory
/// (so resident memory grows by design, and freed addresses are not reused soon).
let runningUnderAddressSanitizer = isLoaded("__asan_init")

/// Whether some image loaded in this process defines `symbol`.
private func isLoaded(_ symbol: String) -> Bool {
    // `RTLD_DEFAULT`, a macro Swift does not import: -2 on Apple platforms, null elsewhere.
    #if canImport(Darwin)
    let everyImage = UnsafeMutableRawPointer(bitPattern: -2)
    #else
    let everyImage: UnsafeMutableRawPointer? = nil
    #endif
    return dlsym(everyImage, symbol) != nil
}

// MARK: - Exit tests

#if compiler(>=6.2)
/// What an exit test's process wrote to standard error ("" if there is no result to read).
func standardError(of result: ExitTest.Result?) -> String {
    result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
}
#endif
