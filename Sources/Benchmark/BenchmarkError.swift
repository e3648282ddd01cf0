/// A benchmark run that could not complete, with what to look at.
public struct BenchmarkError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { self.problem }
}
