/// How errors are written to logs: enough for an operator to act on, nothing from the data. An
/// error type whose plain description could quote data conforms to `SafelyDescribable` (the
/// store's database errors do) and says what may be logged.
public enum SafeErrorDescription {
    public static func of(_ error: any Error) -> String {
        if let error = error as? any SafelyDescribable { return error.safeDescription }
        return String(describing: error)
    }
}

/// An error that says for itself what of it may reach a log.
public protocol SafelyDescribable {
    var safeDescription: String { get }
}
