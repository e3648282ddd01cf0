/// A tool call as an executor receives it: `id` is echoed by the answer; `arguments` are the
/// model's, untrusted, checked by the executor against its tool's shape.
public struct ToolRequest: Sendable, Equatable, Codable {
    public var id: String
    public var tool: String
    public var arguments: JSONValue

    public init(id: String, tool: String, arguments: JSONValue) {
        self.id = id
        self.tool = tool
        self.arguments = arguments
    }
}

/// An executor's answer: a result, or an error the model reads as the tool's result (a tool that
/// fails never fails the job).
public struct ToolResponse: Sendable, Equatable, Codable {
    public var id: String
    public var result: JSONValue?
    public var error: String?

    public init(id: String, result: JSONValue? = nil, error: String? = nil) {
        self.id = id
        self.result = result
        self.error = error
    }
}

/// What one code interpreter run gives back.
public struct CodeRunResult: Sendable, Equatable, Codable {
    public var stdout: String
    public var stderr: String
    /// The exit status, or nil when a signal ended it.
    public var exitStatus: Int?
    public var signal: Int?
    public var timedOut: Bool
    /// Output past the cap was cut and the run killed.
    public var truncated: Bool
    public var durationMilliseconds: Int
    public var artifacts: [Artifact]

    public struct Artifact: Sendable, Equatable, Codable {
        public var name: String
        public var mediaType: String
        public var size: Int
        /// The bytes, base64.
        public var data: String

        public init(name: String, mediaType: String, size: Int, data: String) {
            self.name = name
            self.mediaType = mediaType
            self.size = size
            self.data = data
        }

        enum CodingKeys: String, CodingKey {
            case name, size, data
            case mediaType = "media_type"
        }
    }

    public init(stdout: String, stderr: String, exitStatus: Int?, signal: Int?, timedOut: Bool, truncated: Bool, durationMilliseconds: Int, artifacts: [Artifact]) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitStatus = exitStatus
        self.signal = signal
        self.timedOut = timedOut
        self.truncated = truncated
        self.durationMilliseconds = durationMilliseconds
        self.artifacts = artifacts
    }

    enum CodingKeys: String, CodingKey {
        case stdout, stderr, signal, truncated, artifacts
        case exitStatus = "exit_status"
        case timedOut = "timed_out"
        case durationMilliseconds = "duration_ms"
    }
}
