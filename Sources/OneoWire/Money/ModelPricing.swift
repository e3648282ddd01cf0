/// List prices of a model, in micro-dollars per million tokens, so that every cost is an exact
/// integer computation rounded up: we never under-count what the provider may bill.
public struct ModelPricing: Sendable, Hashable {
    public let inputPerMillionTokens: Microdollars
    public let outputPerMillionTokens: Microdollars

    public init(inputPerMillionTokens: Microdollars, outputPerMillionTokens: Microdollars) {
        self.inputPerMillionTokens = inputPerMillionTokens
        self.outputPerMillionTokens = outputPerMillionTokens
    }

    /// The cost of a call with these token counts, rounded up to the next micro-dollar.
    public func cost(promptTokens: Int, completionTokens: Int) -> Microdollars {
        func charge(_ tokens: Int, _ perMillion: Microdollars) -> Int64 {
            let product = Int64(tokens) * perMillion.rawValue
            return (product + 999_999) / 1_000_000
        }
        return Microdollars(
            charge(promptTokens, self.inputPerMillionTokens) + charge(completionTokens, self.outputPerMillionTokens)
        )
    }

    /// Prices for a model name. An unknown model is charged at the most expensive known price, so
    /// that a budget computed from it is never too low.
    public static func forModel(_ model: String) -> ModelPricing {
        if let known = Self.table[model] { return known }
        if let match = Self.table.keys.filter({ model.hasPrefix($0) }).max(by: { $0.count < $1.count }) {
            return Self.table[match]!
        }
        return Self.mostExpensive
    }

    private static let table: [String: ModelPricing] = [
        "gpt-4o-mini": .init(inputPerMillionTokens: Microdollars(150_000), outputPerMillionTokens: Microdollars(600_000)),
        "gpt-4o": .init(inputPerMillionTokens: Microdollars(2_500_000), outputPerMillionTokens: Microdollars(10_000_000)),
        "gpt-4.1-mini": .init(inputPerMillionTokens: Microdollars(400_000), outputPerMillionTokens: Microdollars(1_600_000)),
        "gpt-4.1": .init(inputPerMillionTokens: Microdollars(2_000_000), outputPerMillionTokens: Microdollars(8_000_000)),
        "gpt-4-turbo": .init(inputPerMillionTokens: Microdollars(10_000_000), outputPerMillionTokens: Microdollars(30_000_000)),
        "gpt-3.5-turbo": .init(inputPerMillionTokens: Microdollars(500_000), outputPerMillionTokens: Microdollars(1_500_000)),
    ]

    private static let mostExpensive = ModelPricing(
        inputPerMillionTokens: Microdollars(30_000_000),
        outputPerMillionTokens: Microdollars(60_000_000)
    )
}
