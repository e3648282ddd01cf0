import CProcess
import Foundation
import OneoWire
@testable import Supervisor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Frames to a child wait for its socket instead of being dropped, keep their order, and carry
/// their descriptors; a child that stops reading is refused past a bound.
@Suite("child I/O: frames to a child")
struct ChildIOTests {
    static func pair() throws -> (supervisor: FrameSocket, child: FrameSocket) {
        var fds: [Int32] = [-1, -1]
        try #require(oneo_socketpair(&fds) == 0)
        return (FrameSocket(descriptor: fds[0]), FrameSocket(descriptor: fds[1]))
    }

    @Test("many more bytes than the socket holds arrive whole and in order, while the child reads late")
    func waitsForTheSocket() async throws {
        let (supervisor, child) = try Self.pair()
        let io = ChildIO(maximumFrame: 4096)
        io.watchFrames(of: "test", on: supervisor) { _ in }
        let name = String(repeating: "n", count: 3_000)
        // ~900 KB: several times a socket's buffer, so most of it waits in the outbox.
        for index in 0..<300 {
            #expect(io.send(.processor(tenant: TenantID(1), name: name, concurrency: 1, request: UInt32(index)), to: supervisor))
        }
        let received = try await Task.detached {
            try (0..<300).map { _ in try child.receive(SupervisorMessage.self, limit: 8_192) }
        }.value
        let requests = received.compactMap { message -> UInt32? in
            if case .processor(_, _, _, let request) = message { return request }
            return nil
        }
        #expect(requests == (0..<300).map(UInt32.init))
    }

    @Test("a descriptor goes with its frame; the caller's own copy may be closed at once")
    func passesDescriptors() async throws {
        let (supervisor, child) = try Self.pair()
        let io = ChildIO(maximumFrame: 4096)
        io.watchFrames(of: "test", on: supervisor) { _ in }
        var pipe: [Int32] = [-1, -1]
        try #require(oneo_pipe(&pipe, 0) == 0)
        #expect(io.send(.queue(request: 9), to: supervisor, passing: pipe[1]))
        close(pipe[1])
        let message = try await Task.detached { try child.receive(SupervisorMessage.self, limit: 4_096) }.value
        #expect(message == .queue(request: 9))
        let passed = try #require(child.takeDescriptor())
        // The passed descriptor is the pipe's write end: what goes in comes out of our read end.
        var byte: UInt8 = 42
        #expect(write(passed, &byte, 1) == 1)
        var back: UInt8 = 0
        #expect(read(pipe[0], &back, 1) == 1 && back == 42)
        close(passed)
        close(pipe[0])
    }

    @Test("a child that leaves a megabyte unread is refused more")
    func boundedForAStuckChild() throws {
        let (supervisor, child) = try Self.pair()
        let io = ChildIO(maximumFrame: 4096)
        io.watchFrames(of: "test", on: supervisor) { _ in }
        let name = String(repeating: "n", count: 3_000)
        var accepted = 0
        for index in 0..<2_000 where io.send(.processor(tenant: TenantID(1), name: name, concurrency: 1, request: UInt32(index)), to: supervisor) {
            accepted += 1
        }
        #expect(accepted > 300 && accepted < 2_000)
        _ = child
    }

    @Test("a child that has not read the descriptor sent to it gets no second one; a socket not watched gets nothing")
    func oneDescriptorAtATime() throws {
        let (supervisor, child) = try Self.pair()
        let io = ChildIO(maximumFrame: 4096)
        #expect(!io.send(.queue(request: 1), to: supervisor), "not watched yet")
        io.watchFrames(of: "test", on: supervisor) { _ in }
        var pipe: [Int32] = [-1, -1]
        try #require(oneo_pipe(&pipe, 0) == 0)
        defer { close(pipe[0]); close(pipe[1]) }
        // Fill the socket so that the frame with the descriptor has to wait.
        let name = String(repeating: "n", count: 3_000)
        var index: UInt32 = 0
        while !io.holdsDescriptor(for: supervisor) {
            #expect(io.send(.processor(tenant: TenantID(1), name: name, concurrency: 1, request: index), to: supervisor))
            #expect(io.send(.queue(request: 100_000 + index), to: supervisor, passing: pipe[1]) || io.holdsDescriptor(for: supervisor))
            index += 1
            if index > 500 { break }
        }
        #expect(io.holdsDescriptor(for: supervisor))
        #expect(!io.send(.queue(request: 7), to: supervisor, passing: pipe[1]))
        // Frames without a descriptor still queue.
        #expect(io.send(.health(request: 1, nil), to: supervisor))
        _ = child
    }
}
