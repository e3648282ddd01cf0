extension [UInt8] {
    /// Appends a string's UTF-8 bytes as one copy. Prompts are built from many short strings, and
    /// `append(contentsOf: string.utf8)` copies them through the generic sequence path.
    @inline(__always)
    package mutating func appendUTF8(_ string: String) {
        let copied: Void? = string.utf8.withContiguousStorageIfAvailable { self.append(contentsOf: $0) }
        if copied == nil { self.append(contentsOf: string.utf8) }
    }
}
