/// The hard limits of what a template and its prompt may be. No `ai_config` can raise them; a
/// config that asks for more is refused when it is written (422 naming the limit), and the
/// renderer clamps whatever it is given, so a config read from an older row cannot either.
public enum PromptLimits {
    /// A template's source, in UTF-8 bytes: a page of instructions is a few KiB.
    public static let templateBytes = 32 * 1024
    /// Placeholders in one template, `{*}` included: a prompt that names more fields than this
    /// wants `{*}`.
    public static let placeholders = 100
    /// Keys in one dotted placeholder path (`{a.b.c}` is three).
    public static let pathDepth = 8
    /// The most `max_prompt_chars` may be, in Unicode scalars: at most 4 MiB of UTF-8, about
    /// 250,000 tokens, above every current model's context.
    public static let promptCharacters = 1_000_000
    /// The most `max_field_chars` may be, in Unicode scalars.
    public static let fieldCharacters = 100_000
    /// A field's `system_message`, in UTF-8 bytes.
    public static let systemMessageBytes = 32 * 1024
}
