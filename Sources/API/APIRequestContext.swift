public import Hummingbird
public import Foundation
public import OneoWire
public import OneoPrompt
public import OneoStore
public import OneoCore

/// The tenant and permissions a request's bearer token resolved to.
public struct Caller: Sendable {
    public let tenant: TenantID
    public let tenantName: String
    public let defaultModel: String
    /// The tenant's own sensitive field names, added to the built-in list.
    public let sensitiveNames: [String]
    public let tokenName: String
    public let permissions: Set<APIToken.Permission>
}

/// Request context of the API: the authenticated caller, JSON in and out with ISO 8601 dates.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var caller: Caller?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.caller = nil
    }

    /// Record bodies are bounded: a CRM record is not a file upload.
    public var maxUploadSize: Int { 1 << 20 }

    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The caller, requiring `permission`; routes behind the authenticator always have one.
    func require(_ permission: APIToken.Permission) throws(APIError) -> Caller {
        guard let caller = self.caller else { throw APIError.unauthenticated }
        guard caller.permissions.contains(permission) else { throw APIError.forbidden(permission) }
        return caller
    }
}
