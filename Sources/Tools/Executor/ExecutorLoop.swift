import Foundation
import OneoWire

/// An executor's one loop: read a request frame, answer it, repeat, on descriptor 3 (its end of
/// the socket its parent made). A malformed frame gets an error answer and the loop goes on; an
/// oversized one gets an error answer and the connection ends, since its body cannot be skipped
/// safely. The loop ends when the parent closes its end.
struct ExecutorLoop {
    let socket: FrameSocket
    let tool: String
    /// Answers one request; a thrown error becomes the answer's `error`.
    let handle: (ToolRequest) throws -> JSONValue
    /// Runs after each answer is sent (the code interpreter refills its pool there).
    let afterEach: () -> Void

    func run() -> Int32 {
        while true {
            let request: ToolRequest
            do {
                request = try self.socket.receive(ToolRequest.self)
            } catch {
                switch error.code {
                case .closed:
                    return 0
                case .malformed:
                    Log.line("refused a malformed frame: \(error)")
                    try? self.socket.send(ToolResponse(id: "", error: "malformed request: \(error)"))
                    continue
                case .oversized:
                    Log.line("refused an oversized frame and closed the connection: \(error)")
                    try? self.socket.send(ToolResponse(id: "", error: "request over the size limit: \(error)"))
                    return 3
                default:
                    Log.line("the connection failed: \(error)")
                    return 4
                }
            }
            var response = ToolResponse(id: String(request.id.prefix(128)))
            if request.tool != self.tool {
                response.error = "this executor runs \(self.tool), not \(String(request.tool.prefix(64)))"
            } else {
                do {
                    response.result = try self.handle(request)
                } catch {
                    response.error = "\(error)"
                }
            }
            do {
                try self.socket.send(response)
            } catch where error.code == .oversized {
                // Nothing was written: the caller gets an error instead of the result.
                Log.line("an answer was over the frame limit: \(error)")
                do {
                    try self.socket.send(ToolResponse(id: response.id, error: "the tool's result was over the size limit"))
                } catch {
                    return 4
                }
            } catch {
                Log.line("sending an answer failed: \(error)")
                return 4
            }
            self.afterEach()
        }
    }
}

/// One line per event on stderr, which the supervisor collects: never a request's content.
enum Log {
    static func line(_ text: String) {
        FileHandle.standardError.write(Data("oneo-tool: \(text)\n".utf8))
    }
}

/// Why a call failed, in words the model reads as the tool's result (never a request's content
/// beyond what the message names).
struct ToolFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}
