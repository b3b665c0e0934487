import Foundation
import Locals
import Testing

@Suite("update whose body resets the key")
struct UpdateResetTests {
    /// An `.overlay` child that wrote its whole value keeps it in a private frame (frozen). Its
    /// `update` runs the body inside that frame's `mutate`, holding the frame unretained; a
    /// `reset()` in the body (the child's own value, not a shared one: allowed, and `CellStorage.update`
    /// says the body "may reset this very key") sends the child back to the scope and releases the
    /// private frame, which `mutate` then writes into after the body returns.
    ///
    /// Debug builds happen to retain the frame around `mutate` and pass; the use-after-free shows in
    /// an optimized build: `swift build -c release --build-tests -Xswiftc -enable-testing
    /// --sanitize=address --scratch-path .build-rel-asan`, then `swift test -c release -Xswiftc
    /// -enable-testing --skip-build --sanitize=address --scratch-path .build-rel-asan
    /// --disable-xctest --filter UpdateResetTests` (heap-use-after-free in `ScopeFrame.mutate`).
    @Test("update on a frozen .overlay child whose body resets the key")
    func updateOnFrozenOverlayChildResets() async {
        let local = Local<[Int]>(inheritance: .overlay) { [0] }
        let seen = await local.withValue(\.self, [1]) {
            await Task { () -> [[Int]] in
                var seen: [[Int]] = []
                local.value = [5]  // the whole value: the child freezes its own copy
                seen.append(local.value)
                local.update { value in
                    local.reset()  // back to reading through the scope: the private frame goes
                    value = [9]
                }
                RunViewRemovalTests.reuseFreedMemory()
                seen.append(local.value)
                return seen
            }.value
        }
        #expect(seen.first == [5])
        #expect(seen.count == 2)
    }
}
